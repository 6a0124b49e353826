-- migrate:up
-- Transactional outbox, written by Watermill's SQL publisher in the same
-- transaction as the order (PostgreSQLQueueSchema layout). The forwarder in
-- the workers marks rows acked once RabbitMQ confirmed them; acked rows are
-- deleted after a retention period.
CREATE TABLE outbox_messages (
    "offset"   BIGSERIAL   PRIMARY KEY,
    uuid       VARCHAR(36) NOT NULL,
    payload    JSON,
    metadata   JSON,
    acked      BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- The forwarder's poll and the backlog metric read only unforwarded rows.
CREATE INDEX outbox_messages_pending_idx ON outbox_messages ("offset") WHERE NOT acked;
-- Retention cleanup of forwarded rows.
CREATE INDEX outbox_messages_acked_created_idx ON outbox_messages (created_at) WHERE acked;

-- Inbox: one row per message a handler has applied, written in the same
-- transaction as the handler's effect, so a redelivered message is a no-op.
CREATE TABLE processed_messages (
    handler      TEXT        NOT NULL,
    message_id   TEXT        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (handler, message_id)
);

-- migrate:down
DROP TABLE processed_messages;
DROP TABLE outbox_messages;
