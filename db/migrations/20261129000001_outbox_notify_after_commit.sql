-- migrate:up
-- The API announces committed events itself, after the commit
-- (AnnounceOutbox in db/queries/outbox.sql): a NOTIFY in the order's
-- transaction, as this trigger sent, takes a database-wide lock at commit
-- and holds it until the commit is on disk, so concurrent orders committed
-- one at a time instead of sharing a WAL flush.
DROP TRIGGER outbox_messages_notify ON outbox_messages;
DROP FUNCTION notify_outbox_written();

-- migrate:down
CREATE FUNCTION notify_outbox_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_messages', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_messages_notify
    AFTER INSERT ON outbox_messages
    FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox_written();
