-- name: MarkMessageProcessed :execrows
-- 1 the first time a handler sees a message id, 0 for a redelivery.
INSERT INTO processed_messages (handler, message_id)
VALUES (@handler, @message_id)
ON CONFLICT DO NOTHING;
