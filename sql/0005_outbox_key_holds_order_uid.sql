-- Every primary key and unique constraint includes order_uid, so that each table can be distributed by
-- order_uid and co-located (Citus; see docs/scaling.md). The outbox's key was its id alone. Ids stay unique
-- (an identity), and the relay still pages and deletes by id through their own index.
ALTER TABLE outbox DROP CONSTRAINT outbox_pkey;
ALTER TABLE outbox ADD PRIMARY KEY (order_uid, id);
CREATE INDEX outbox_id_idx ON outbox (id);
