-- Appenders serialise on a transaction-scoped advisory lock instead of the table's
-- EXCLUSIVE lock. The ordering promise is unchanged: an appender takes the lock before its
-- INSERT draws notification ids and keeps it until commit, so ids become visible in the
-- order they were handed out and a reader tailing by id never skips a row that commits
-- late. But the table itself is only ROW EXCLUSIVE-locked (by the INSERT), which does not
-- conflict with the SHARE UPDATE EXCLUSIVE lock that VACUUM, ANALYZE and autovacuum take:
-- maintenance (even an anti-wraparound vacuum) no longer stalls or fails appends.
--
-- Key 7312002 is fixed and reserved for this lock (7312001 serialises migrators); nothing
-- else may take it. lock_timeout bounds the wait for it as it bounded the table lock's.
CREATE OR REPLACE FUNCTION runledger_append(
    p_ids uuid[], p_versions bigint[], p_topics text[], p_states bytea[], p_lock_timeout text
) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    PERFORM pg_advisory_xact_lock(7312002);
    NOTIFY runledger_events;
    RETURN QUERY
        INSERT INTO stored_events (originator_id, originator_version, topic, state)
        SELECT * FROM unnest(p_ids, p_versions, p_topics, p_states)
        RETURNING notification_id;
END;
$$;
