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

-- name: ClaimOutbox :many
-- A forwarder's claim: up to @batch_size unforwarded rows from offset
-- @floor on, oldest first, that no other forwarder holds. Run under READ
-- COMMITTED in the transaction that marks them forwarded, so any number of
-- forwarders (goroutines or processes) share the table without blocking or
-- serialisation failures; the rows stay locked until that transaction ends.
SELECT "offset", uuid, payload, metadata
FROM outbox_messages
WHERE NOT acked AND "offset" >= @floor::bigint
ORDER BY "offset"
LIMIT @batch_size::int
FOR UPDATE SKIP LOCKED;

-- name: MarkOutboxForwarded :exec
-- Rows RabbitMQ confirmed, in the transaction that claimed them. Rows are
-- kept (acked) until retention deletes them, so a recent event can still be
-- inspected.
UPDATE outbox_messages SET acked = TRUE
WHERE "offset" = ANY(@offsets::bigint[]);

-- name: ListenForOutbox :exec
-- Subscribes the connection to the wake-ups AnnounceOutbox sends after
-- events are committed.
LISTEN outbox_messages;

-- name: AnnounceOutbox :exec
-- Wakes the forwarders listening on outbox_messages: sent in a transaction
-- of its own after events committed, never in the events' transaction (a
-- NOTIFY holds a database-wide lock from its commit until the commit is
-- flushed, which would serialise every order's commit). Its commit is not
-- waited for on disk: a wake-up lost in a crash costs one safety poll.
SELECT set_config('synchronous_commit', 'off', true), pg_notify('outbox_messages', '');
