"""Operator tooling over the dead-letter topic: read it without joining a group, select, replay, format."""
