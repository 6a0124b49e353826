-- name: InsertOrderWithKey :batchexec
-- InsertOrder behind an idempotency key, in one statement: first the key,
-- (user_id, key), then the order, whose id comes from the key's row. A key
-- recorded already gives no row, hence a NULL id: the statement fails with
-- not_null_violation (23502) on orders.id and writes nothing, and so does
-- the rest of its batch, the order's event (GetIdempotencyKey then says
-- what the key is for). A concurrent request holding the key (its insert
-- not committed yet) makes this wait on the primary key until it ends; the
-- wait is bounded by lock_timeout, set here for the transaction
-- (set_config's third argument: like SET LOCAL) before the key's insert
-- can wait (SQLSTATE 55P03 when the wait runs out), and given back the
-- value it had (current_setting, read first) once the key is ours: later
-- lock waits of the create (a maintenance lock on outbox_messages, say) are
-- not another request holding the key, and cutting them short would fail a
-- create that did nothing wrong.
WITH usual AS (
    SELECT current_setting('lock_timeout') AS lock_timeout
), wait AS (
    SELECT set_config('lock_timeout', @lock_timeout::text, true) FROM usual
), claimed AS (
    INSERT INTO idempotency_keys (user_id, key, fingerprint, order_id, response, expires_at)
    SELECT @user_id::bigint, @key::text, @fingerprint::bytea, @id::uuid, @response::jsonb, @expires_at::timestamptz
    FROM wait
    ON CONFLICT (user_id, key) DO NOTHING
    RETURNING order_id
), waited AS (
    SELECT claimed.order_id, set_config('lock_timeout', usual.lock_timeout, true)
    FROM claimed, usual
)
INSERT INTO orders (id, user_id, items, total_price, created_at, updated_at)
VALUES ((SELECT order_id FROM waited), @user_id::bigint, @items::jsonb, @total_price::numeric,
        @created_at::timestamptz, @created_at::timestamptz);

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
