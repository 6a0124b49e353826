-- migrate:up
-- A login starts a refresh-token family; every refresh adds the successor
-- of the token presented to it. Whatever changes a family's tokens holds
-- the lock on its row first, so that a family revoked by one request cannot
-- gain a token from another that was rotating at the same moment.
CREATE TABLE refresh_token_families (
    id         UUID        PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);

CREATE INDEX refresh_token_families_user_idx ON refresh_token_families (user_id);

-- Refresh tokens, stored only as the SHA-256 of the token. A refresh
-- retires the token presented (rotated_at, replaced_by). access_jti is the
-- access token issued together with the refresh token, so that revoking the
-- family also revokes the access tokens issued from it.
CREATE TABLE refresh_tokens (
    token_hash        BYTEA       PRIMARY KEY CHECK (length(token_hash) = 32),
    family_id         UUID        NOT NULL REFERENCES refresh_token_families (id) ON DELETE CASCADE,
    access_jti        UUID        NOT NULL,
    access_expires_at TIMESTAMPTZ NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at        TIMESTAMPTZ NOT NULL,
    rotated_at        TIMESTAMPTZ,
    replaced_by       BYTEA,
    revoked_at        TIMESTAMPTZ
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

-- Revoked access tokens, by jti, until the token would have expired anyway.
-- Every API instance keeps this table in memory: loaded at start, kept
-- current by the notification below, and reloaded periodically.
CREATE TABLE revoked_tokens (
    jti        UUID        PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens (expires_at);

-- Every revocation is announced on the channel token_revocations as
-- "<jti> <expiry in Unix seconds>", delivered when the revoking transaction
-- commits, whichever code path inserted it.
CREATE FUNCTION notify_token_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('token_revocations', NEW.jti::text || ' ' || floor(extract(epoch FROM NEW.expires_at))::bigint::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER revoked_tokens_notify
    AFTER INSERT ON revoked_tokens
    FOR EACH ROW EXECUTE FUNCTION notify_token_revoked();

-- migrate:down
DROP TRIGGER revoked_tokens_notify ON revoked_tokens;
DROP FUNCTION notify_token_revoked();
DROP TABLE revoked_tokens;
DROP TABLE refresh_tokens;
DROP TABLE refresh_token_families;
