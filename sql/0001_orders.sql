-- Orders normalised into four tables. Orders never change once stored; content_hash tells a redelivered
-- duplicate (same hash: no-op) from a different order reusing an order_uid (other hash: conflict -> DLQ).
CREATE TABLE orders (
    order_uid          text PRIMARY KEY CHECK (order_uid ~ '^[A-Za-z0-9_-]{1,64}$'),
    track_number       text NOT NULL,
    entry              text NOT NULL,
    locale             text NOT NULL,
    internal_signature text NOT NULL,
    customer_id        text NOT NULL,
    delivery_service   text NOT NULL,
    shardkey           text NOT NULL,
    sm_id              bigint NOT NULL CHECK (sm_id >= 0),
    date_created       timestamptz NOT NULL,
    oof_shard          text NOT NULL,
    content_hash       bytea NOT NULL CHECK (octet_length(content_hash) = 32),
    stored_at          timestamptz NOT NULL DEFAULT now()
);
-- "Most recent orders" (API listing, cache warm-up) walk this index with keyset pagination.
CREATE INDEX orders_recent_idx ON orders (date_created DESC, order_uid DESC);

CREATE TABLE deliveries (
    order_uid text PRIMARY KEY REFERENCES orders (order_uid) ON DELETE CASCADE,
    name      text NOT NULL,
    phone     text NOT NULL,
    zip       text NOT NULL,
    city      text NOT NULL,
    address   text NOT NULL,
    region    text NOT NULL,
    email     text NOT NULL
);

CREATE TABLE payments (
    order_uid     text PRIMARY KEY REFERENCES orders (order_uid) ON DELETE CASCADE,
    transaction   text NOT NULL,
    request_id    text NOT NULL,
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    provider      text NOT NULL,
    amount        bigint NOT NULL CHECK (amount >= 0),
    payment_dt    bigint NOT NULL CHECK (payment_dt >= 0),
    bank          text NOT NULL,
    delivery_cost bigint NOT NULL CHECK (delivery_cost >= 0),
    goods_total   bigint NOT NULL CHECK (goods_total >= 0),
    custom_fee    bigint NOT NULL CHECK (custom_fee >= 0)
);

-- position keeps the items' original order; the primary key (order_uid, position) is also the index
-- that finds an order's items.
CREATE TABLE items (
    order_uid    text NOT NULL REFERENCES orders (order_uid) ON DELETE CASCADE,
    position     integer NOT NULL CHECK (position >= 0),
    chrt_id      bigint NOT NULL CHECK (chrt_id >= 0),
    track_number text NOT NULL,
    price        bigint NOT NULL CHECK (price >= 0),
    rid          text NOT NULL,
    name         text NOT NULL,
    sale         smallint NOT NULL CHECK (sale BETWEEN 0 AND 100),
    size         text NOT NULL,
    total_price  bigint NOT NULL CHECK (total_price >= 0),
    nm_id        bigint NOT NULL CHECK (nm_id >= 0),
    brand        text NOT NULL,
    status       bigint NOT NULL,
    PRIMARY KEY (order_uid, position)
);
