-- name: ProcessOrdersOnce :many
-- The task handlers' effect for a group of tasks in one statement (one round
-- trip, one transaction, one commit): record each task in the inbox and set
-- its order's processed_at once. One row per task whose order exists; first
-- is false for a task the inbox already held (a redelivery). A task whose
-- order does not exist gets no row and records nothing, so a later retry or
-- replay can still apply. Orders are locked in id order, so concurrent groups
-- (several workers processes) cannot deadlock.
WITH task AS (
    SELECT unnest(@order_ids::uuid[]) AS order_id, unnest(@message_ids::text[]) AS message_id
), target AS (
    SELECT orders.id FROM orders
    WHERE orders.id IN (SELECT order_id FROM task)
    ORDER BY orders.id
    FOR UPDATE
), inbox AS (
    INSERT INTO processed_messages (handler, message_id)
    SELECT @handler, task.message_id FROM task JOIN target ON target.id = task.order_id
    ON CONFLICT DO NOTHING
    RETURNING message_id
), marked AS (
    UPDATE orders
    -- Processing changes the order's representation: a new version (ETag).
    SET processed_at = coalesce(processed_at, now()),
        version = version + (processed_at IS NULL)::int
    WHERE orders.id IN (SELECT id FROM target)
    RETURNING orders.id, orders.processed_at, orders.created_at
)
SELECT task.message_id::text AS message_id, marked.processed_at, marked.created_at,
       EXISTS (SELECT 1 FROM inbox WHERE inbox.message_id = task.message_id) AS first
FROM task JOIN marked ON marked.id = task.order_id;
