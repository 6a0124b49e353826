-- name: ClaimIdempotencyKey :execrows
-- Takes (user_id, key) for this request: 1 row when taken, 0 when the key
-- is already recorded. A concurrent request holding the key (its insert not
-- committed yet) makes this wait on the primary key until it ends; the wait
-- is bounded by lock_timeout, set here for the rest of the transaction
-- (set_config's third argument: like SET LOCAL) in the same round trip as
-- the insert, which reads the setting before it can wait (SQLSTATE 55P03
-- when the wait runs out).
WITH wait AS (SELECT set_config('lock_timeout', @lock_timeout::text, true))
INSERT INTO idempotency_keys (user_id, key, fingerprint, order_id, response, expires_at)
SELECT @user_id::bigint, @key::text, @fingerprint::bytea, @order_id::uuid, @response::jsonb, @expires_at::timestamptz
FROM wait
ON CONFLICT (user_id, key) DO NOTHING;

-- name: GetIdempotencyKey :one
SELECT fingerprint, order_id, response, expires_at
FROM idempotency_keys
WHERE user_id = @user_id AND key = @key;

-- name: DeleteExpiredIdempotencyKey :execrows
-- Frees one key whose record has expired, for a new request to take it.
DELETE FROM idempotency_keys
WHERE user_id = @user_id AND key = @key AND expires_at <= @now;

-- name: DeleteExpiredIdempotencyKeys :execrows
-- Retention: at most batch_size expired keys, oldest first, skipping rows a
-- request is taking over right now.
DELETE FROM idempotency_keys
WHERE (user_id, key) IN (
    SELECT i.user_id, i.key FROM idempotency_keys AS i
    WHERE i.expires_at <= @now
    ORDER BY i.expires_at
    LIMIT @batch_size
    FOR UPDATE SKIP LOCKED
);
