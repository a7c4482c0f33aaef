-- What content_hash holds since the consumer fingerprints the bytes it received instead of re-serialising
-- every order (0001's comment describes the earlier rule; applied migrations are never edited). Hashes
-- stored under the earlier rule stay valid: a hash that differs only makes the consumer compare fields.
COMMENT ON COLUMN orders.content_hash IS
    'SHA-256 of the order message as first received (of its canonical JSON when stored without one). '
    'Same hash again: a duplicate. Other hash for this order_uid: compared field by field, '
    'same content is a duplicate, other content a conflict (DLQ).';
