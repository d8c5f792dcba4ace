-- The event log. Column layout matches eventsourcing's PostgreSQL application recorder
-- (table "stored_events"), so the library can read what runledger writes.
CREATE TABLE IF NOT EXISTS stored_events (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    notification_id bigserial,
    PRIMARY KEY (originator_id, originator_version)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);

CREATE UNIQUE INDEX IF NOT EXISTS stored_events_notification_id_idx
    ON stored_events (notification_id ASC);

-- The write protocol in one server-side call, so an append is a single round trip:
-- the EXCLUSIVE lock serialises writers, so notification ids become visible in the order
-- they were handed out and a reader tailing by id never skips a row that commits late.
-- NOTIFY is delivered at commit; identical notifications in one transaction fold into one.
CREATE OR REPLACE FUNCTION runledger_append(
    p_ids uuid[], p_versions bigint[], p_topics text[], p_states bytea[], p_lock_timeout text
) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    LOCK TABLE stored_events IN EXCLUSIVE MODE;
    NOTIFY runledger_events;
    RETURN QUERY
        INSERT INTO stored_events (originator_id, originator_version, topic, state)
        SELECT * FROM unnest(p_ids, p_versions, p_topics, p_states)
        RETURNING notification_id;
END;
$$;
