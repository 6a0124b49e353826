-- name: AcquireAdvisoryLock :exec
-- Blocks until the session-level lock is free; released on unlock or disconnect.
SELECT pg_advisory_lock(@lock_key::bigint);

-- name: ReleaseAdvisoryLock :exec
SELECT pg_advisory_unlock(@lock_key::bigint);
