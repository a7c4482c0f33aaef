"""Fault injection for an ordersctl pipeline, with a checker independent of the pipeline's own counters."""
