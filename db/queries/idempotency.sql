-- name: CreateOrderWithKey :one
-- CreateOrder behind an idempotency key, in one statement: first the key,
-- (user_id, key), then the order, only if the key was taken. No row: the
-- key is recorded already (GetIdempotencyKey says for what). A concurrent
-- request holding the key (its insert not committed yet) makes this wait on
-- the primary key until it ends; the wait is bounded by lock_timeout, set
-- here for the rest of the transaction (set_config's third argument: like
-- SET LOCAL), before the key's insert can wait (SQLSTATE 55P03 when the
-- wait runs out).
WITH wait AS (
    SELECT set_config('lock_timeout', @lock_timeout::text, true)
), claimed AS (
    INSERT INTO idempotency_keys (user_id, key, fingerprint, order_id, response, expires_at)
    SELECT @user_id::bigint, @key::text, @fingerprint::bytea, @id::uuid, @response::jsonb, @expires_at::timestamptz
    FROM wait
    ON CONFLICT (user_id, key) DO NOTHING
    RETURNING order_id, user_id
)
INSERT INTO orders (id, user_id, items, total_price, created_at, updated_at)
SELECT claimed.order_id, claimed.user_id, @items::jsonb, @total_price::numeric, @created_at::timestamptz, @created_at::timestamptz
FROM claimed
RETURNING *;

-- name: GetIdempotencyKey :one
SELECT fingerprint, order_id, response, expires_at
FROM idempotency_keys
WHERE user_id = @user_id AND key = @key;

-- name: DeleteExpiredIdempotencyKey :execrows
-- Frees one key whose record has expired, for a new request to take it.
DELETE FROM idempotency_keys
WHERE user_id = @user_id AND key = @key AND expires_at <= @now;

-- name: DeleteExpiredIdempotencyKeys :execrows
-- Retention: at most batch_size expired keys, skipping rows a request is
-- taking over right now.
DELETE FROM idempotency_keys
WHERE (user_id, key) IN (
    SELECT i.user_id, i.key FROM idempotency_keys AS i
    WHERE i.expires_at <= @now
    LIMIT @batch_size
    FOR UPDATE SKIP LOCKED
);

-- name: EndKeyLockWait :exec
-- Gives the rest of the transaction back its usual lock_timeout (the
-- session's, as RESET would), once the key is ours: the bound set by
-- CreateOrderWithKey is for waiting on another request's key only. Kept, it
-- would also bound every later lock wait of the create (a maintenance lock
-- on outbox_messages, say), which is not another request holding the key:
-- cutting it short would fail a create that did nothing wrong.
SELECT set_config('lock_timeout', reset_val, true) FROM pg_catalog.pg_settings WHERE name = 'lock_timeout';
