-- Transactional outbox: one "order saved" event per new order, written in the same transaction as the
-- order, published to the events topic by the relay, then marked published.
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_uid    text NOT NULL REFERENCES orders (order_uid) ON DELETE CASCADE,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
