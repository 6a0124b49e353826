-- Read-only figures for the benchmark harness and operators.

-- name: CountUnprocessedSince :one
SELECT count(*)::bigint FROM orders
WHERE created_at >= @since AND processed_at IS NULL;

-- name: ProcessingLatenciesSince :many
-- Commit (created_at) to processed_at, in milliseconds, of orders created since.
SELECT (extract(epoch FROM processed_at - created_at) * 1000)::float8 AS latency_ms
FROM orders
WHERE created_at >= @since AND processed_at IS NOT NULL;

-- name: ProcessedSpanSince :one
SELECT min(processed_at)::timestamptz AS first_processed, max(processed_at)::timestamptz AS last_processed
FROM orders
WHERE created_at >= @since AND processed_at IS NOT NULL;
