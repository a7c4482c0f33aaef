-- The outbox keeps only events still to publish: the relay deletes a row once Kafka has confirmed its
-- event (in the transaction that claimed it). The events topic is the record of what was published; a row
-- kept and updated per event cost the database a new row version and index entry each, and grew forever.
DELETE FROM outbox WHERE published_at IS NOT NULL;
DROP INDEX outbox_unpublished_idx;
ALTER TABLE outbox DROP COLUMN published_at;
