-- Tracing ([otel] enabled): the W3C traceparent of the order's span, which the relay sends on with its event as
-- the `traceparent` header, so that a trace goes on past the outbox. NULL with tracing off. A nullable column
-- without a default rewrites no row, and Citus propagates it to the shards.
ALTER TABLE outbox ADD COLUMN traceparent text;
