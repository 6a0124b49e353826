-- name: LockRefreshFamilyOf :one
-- Locks the family of a refresh token: every change to a family's tokens
-- happens under this lock. No row when the token is unknown.
SELECT id, user_id, revoked_at
FROM refresh_token_families
WHERE id = (SELECT family_id FROM refresh_tokens WHERE token_hash = @token_hash)
FOR UPDATE;

-- name: CreateRefreshToken :exec
INSERT INTO refresh_tokens (token_hash, family_id, access_jti, access_expires_at, expires_at)
VALUES (@token_hash, @family_id, @access_jti, @access_expires_at, @expires_at);

-- name: GetRefreshToken :one
SELECT token_hash, family_id, access_jti, access_expires_at, expires_at, rotated_at, replaced_by, revoked_at
FROM refresh_tokens
WHERE token_hash = @token_hash;

-- name: RotateRefreshToken :exec
-- Records the successor of a token. A token exchanged again within the
-- reuse grace keeps the time of its first rotation, so that the grace is
-- never extended.
UPDATE refresh_tokens
SET rotated_at = coalesce(rotated_at, @now::timestamptz), replaced_by = @replaced_by
WHERE token_hash = @token_hash;

-- name: RevokeRefreshToken :many
-- Revokes one refresh token and the access token issued with it (while
-- that one has not expired); returns the access token revoked.
WITH token AS (
    UPDATE refresh_tokens
    SET revoked_at = coalesce(revoked_at, @now::timestamptz)
    WHERE token_hash = @token_hash
    RETURNING access_jti, access_expires_at
)
INSERT INTO revoked_tokens (jti, expires_at)
SELECT access_jti, access_expires_at FROM token WHERE access_expires_at > @live_after
ON CONFLICT (jti) DO NOTHING
RETURNING *;

-- name: RevokeRefreshFamily :many
-- Revokes a family, every refresh token of it and every access token issued
-- from it that has not expired; returns the access tokens revoked. The
-- caller holds the family's lock (LockRefreshFamilyOf), so no token joins
-- the family while this runs.
WITH family AS (
    UPDATE refresh_token_families
    SET revoked_at = coalesce(revoked_at, @now::timestamptz)
    WHERE id = @family_id
), tokens AS (
    UPDATE refresh_tokens
    SET revoked_at = coalesce(revoked_at, @now::timestamptz)
    WHERE family_id = @family_id
    RETURNING access_jti, access_expires_at
)
INSERT INTO revoked_tokens (jti, expires_at)
SELECT access_jti, access_expires_at FROM tokens WHERE access_expires_at > @live_after
ON CONFLICT (jti) DO NOTHING
RETURNING *;

-- name: RevokeAccessToken :exec
INSERT INTO revoked_tokens (jti, expires_at)
VALUES (@jti, @expires_at)
ON CONFLICT (jti) DO NOTHING;

-- name: ListRevokedTokens :many
-- The revocations that still matter: those of tokens not yet expired.
SELECT jti, expires_at
FROM revoked_tokens
WHERE expires_at > @after;

-- name: PurgeRevokedTokens :execrows
-- Revocations of tokens that have expired since protect nothing.
DELETE FROM revoked_tokens
WHERE expires_at < @before;

-- name: PurgeRefreshFamilies :execrows
-- Families whose every refresh token expired before @before can no longer
-- be used or reused; their tokens go with them.
DELETE FROM refresh_token_families AS f
WHERE f.created_at < @before
  AND NOT EXISTS (
      SELECT 1 FROM refresh_tokens AS t
      WHERE t.family_id = f.id AND t.expires_at >= @before
  );

-- name: ListenForRevocations :exec
-- Subscribes the connection to the revocations announced by the trigger on
-- revoked_tokens.
LISTEN token_revocations;

-- name: StartRefreshFamily :exec
-- A login: a new family and its first refresh token, in one statement.
WITH family AS (
    INSERT INTO refresh_token_families (id, user_id)
    VALUES (@family_id, @user_id)
    RETURNING id
)
INSERT INTO refresh_tokens (token_hash, family_id, access_jti, access_expires_at, expires_at)
SELECT @token_hash, family.id, @access_jti, @access_expires_at, @expires_at
FROM family;
