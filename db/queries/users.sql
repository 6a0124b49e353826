-- name: CreateUser :one
-- Returns no row when the email is already registered (in any letter case).
INSERT INTO users (email, password_hash)
VALUES (@email, @password_hash)
ON CONFLICT ((lower(email))) DO NOTHING
RETURNING id, email;

-- name: GetUserByEmail :one
SELECT id, email, password_hash
FROM users
WHERE lower(email) = lower(@email);
