-- name: CreateOrder :one
-- The new order is PENDING at version 1 (the column defaults), as the
-- service builds it before inserting (the answer a retry replays).
INSERT INTO orders (id, user_id, items, total_price, created_at, updated_at)
VALUES (@id, @user_id, @items, @total_price, @created_at, @created_at)
RETURNING *;

-- name: InsertOrder :batchexec
-- CreateOrder for a batch that also writes the order's event, without the
-- answer: the service holds the order it inserts.
INSERT INTO orders (id, user_id, items, total_price, created_at, updated_at)
VALUES (@id, @user_id, @items, @total_price, @created_at, @created_at);

-- name: GetOrder :one
SELECT * FROM orders
WHERE id = @id;

-- name: UpdateOrderStatus :one
-- Applies the change only while the order is still in one of the statuses the
-- new status may be reached from and, when if_match is not null, while its
-- version is one of those (If-Match), so two concurrent changes cannot both
-- apply: the row lock taken by the sub-select makes the second re-read the
-- status and the version after the first commits. Every change increments
-- the version. Returns the status the order had before.
UPDATE orders AS o
SET status = @new_status, updated_at = now(), version = o.version + 1
FROM (SELECT id, status, version FROM orders WHERE orders.id = @id FOR UPDATE) AS prev
WHERE o.id = prev.id
  AND o.user_id = @user_id
  AND prev.status::text = ANY (@from_statuses::text[])
  AND (sqlc.narg(if_match)::bigint[] IS NULL OR prev.version = ANY (sqlc.narg(if_match)::bigint[]))
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
