-- name: ProcessOrderOnce :one
-- The task handler's effect in one statement (one round trip, its own
-- transaction): record the message in the inbox and set processed_at once.
-- first is false for a redelivered message. No row: the order does not exist,
-- and then nothing is recorded, so a later retry or replay can still apply.
WITH target AS (
    SELECT id FROM orders WHERE orders.id = @order_id FOR UPDATE
), inbox AS (
    INSERT INTO processed_messages (handler, message_id)
    SELECT @handler, @message_id FROM target
    ON CONFLICT DO NOTHING
    RETURNING 1
)
UPDATE orders
SET processed_at = coalesce(processed_at, now())
WHERE orders.id IN (SELECT id FROM target)
RETURNING processed_at, created_at, EXISTS (SELECT 1 FROM inbox) AS first;
