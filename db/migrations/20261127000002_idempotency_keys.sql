-- migrate:up
-- One row per Idempotency-Key a user sent with a create that committed,
-- written in the same transaction as the order and its outbox row: the key
-- is taken exactly when the order exists. A concurrent request with the same
-- key waits on the primary key until the first commits (then replays it) or
-- rolls back (then takes the key). The answer replayed to a retry is the
-- order as it was created (response), not as it is now. No foreign keys: the
-- order row of the same transaction already references the user, and rows
-- go away by expiry only (the workers' retention loop).
CREATE TABLE idempotency_keys (
    user_id     BIGINT      NOT NULL,
    key         TEXT        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the operation and the canonical request body.
    fingerprint BYTEA       NOT NULL CHECK (length(fingerprint) = 32),
    order_id    UUID        NOT NULL,
    response    JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- Retention finds expired keys. Rows arrive in expiry order (a constant TTL),
-- so a BRIN index serves it at almost no cost per insert, unlike a B-tree.
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys USING brin (expires_at);

-- migrate:down
DROP TABLE idempotency_keys;
