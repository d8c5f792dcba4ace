-- name: unfinished_runs
-- Runs with events up to $1 and no terminal event among them, with the topic of their
-- last event (to tell the queued ones). A scan of the log: only run when Redis lost data.
SELECT originator_id AS run_id,
       (array_agg(topic ORDER BY originator_version DESC))[1] AS last_topic
FROM stored_events
WHERE notification_id <= $1
GROUP BY originator_id
HAVING NOT bool_or(topic = ANY($2::text[]));

-- name: runs_touched
SELECT DISTINCT originator_id AS run_id
FROM stored_events
WHERE notification_id > $1 AND notification_id <= $2;

-- name: stale_queued_runs
-- Runs the read model shows queued for longer than $1 seconds: the relay checks that each
-- still has a job waiting or delivered in runs:queue.
SELECT id AS run_id FROM runs
WHERE status = 'queued' AND created_at < now() - make_interval(secs => $1)
ORDER BY created_at, id
LIMIT $2;
