-- migrate:up
-- Every write of an order (a status change, its processing) increments its
-- version; the API sends it as the order's ETag and compares If-Match with
-- it inside the UPDATE. A column of ours rather than xmin, which changes with
-- any rewrite of the row (VACUUM FULL, a restore) and wraps around.
ALTER TABLE orders ADD COLUMN version BIGINT NOT NULL DEFAULT 1 CHECK (version > 0);

-- migrate:down
ALTER TABLE orders DROP COLUMN version;
