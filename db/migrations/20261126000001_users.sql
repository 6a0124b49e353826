-- migrate:up
CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         TEXT        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Emails are unique regardless of case: Alice@x.io and alice@x.io are one user.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- migrate:down
DROP TABLE users;
