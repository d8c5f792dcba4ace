-- name: append
SELECT runledger_append($1::uuid[], $2::bigint[], $3::text[], $4::bytea[], $5::text)
    AS notification_id;

-- name: run_events
SELECT notification_id, originator_id, originator_version, topic, state
FROM stored_events
WHERE originator_id = $1 AND originator_version > $2
ORDER BY originator_version
LIMIT $3;

-- name: run_version
SELECT max(originator_version) FROM stored_events WHERE originator_id = $1;

-- name: events_after
-- The log in commit order after a position; $3 (optional) is the last position wanted.
SELECT notification_id, originator_id, originator_version, topic, state
FROM stored_events
WHERE notification_id > $1 AND ($3::bigint IS NULL OR notification_id <= $3)
ORDER BY notification_id
LIMIT $2;

-- name: events_of_runs
SELECT notification_id, originator_id, originator_version, topic, state
FROM stored_events
WHERE originator_id = ANY($1::uuid[]) AND notification_id <= $2
ORDER BY originator_id, originator_version;

-- name: head_id
SELECT coalesce(max(notification_id), 0) FROM stored_events;
