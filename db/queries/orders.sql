-- name: CreateOrder :one
INSERT INTO orders (id, user_id, items, total_price, created_at, updated_at)
VALUES (@id, @user_id, @items, @total_price, @created_at, @created_at)
RETURNING *;

-- name: GetOrder :one
SELECT * FROM orders
WHERE id = @id;

-- name: UpdateOrderStatus :one
-- Applies the change only while the order is still in one of the statuses the
-- new status may be reached from, so two concurrent changes cannot both apply:
-- the row lock taken by the sub-select makes the second re-read the status
-- after the first commits. Returns the status the order had before.
UPDATE orders AS o
SET status = @new_status, updated_at = now()
FROM (SELECT id, status FROM orders WHERE orders.id = @id FOR UPDATE) AS prev
WHERE o.id = prev.id
  AND o.user_id = @user_id
  AND prev.status::text = ANY (@from_statuses::text[])
RETURNING sqlc.embed(o), prev.status AS previous_status;

-- name: ListOrdersByUser :many
-- Keyset pagination: rows strictly after the (created_at, id) cursor, newest first.
SELECT * FROM orders
WHERE user_id = @user_id
  AND (sqlc.narg(status)::order_status IS NULL OR status = sqlc.narg(status)::order_status)
  AND (sqlc.narg(after_created_at)::timestamptz IS NULL
       OR (created_at, id) < (sqlc.narg(after_created_at)::timestamptz, sqlc.narg(after_id)::uuid))
ORDER BY created_at DESC, id DESC
LIMIT @row_limit;
