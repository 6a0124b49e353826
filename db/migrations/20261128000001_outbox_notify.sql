-- migrate:up
-- Every statement that writes outbox rows announces it on the channel
-- outbox_messages, delivered when its transaction commits (PostgreSQL
-- folds the identical notifications of one transaction into one). The
-- forwarders in the workers listen, so an event is claimed as soon as it is
-- committed instead of at the next poll; the payload is empty, a wake-up.
CREATE FUNCTION notify_outbox_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_messages', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_messages_notify
    AFTER INSERT ON outbox_messages
    FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox_written();

-- migrate:down
DROP TRIGGER outbox_messages_notify ON outbox_messages;
DROP FUNCTION notify_outbox_written();
