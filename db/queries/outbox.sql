-- name: OutboxBacklog :one
-- Unforwarded events and the age of the oldest one, for health and metrics.
SELECT count(*)::bigint AS pending,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age_seconds
FROM outbox_messages
WHERE NOT acked;

-- name: DeleteForwardedOutbox :execrows
-- Retention: forwarded rows older than the cutoff are no longer needed.
DELETE FROM outbox_messages
WHERE acked AND created_at < @cutoff;
