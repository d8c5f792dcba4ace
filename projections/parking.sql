-- Parked events: what a follower could not apply, kept visible and retryable.

-- name: park
-- Parking the same event again (a retry that failed, a non-transactional follower that
-- repeats work after a crash) adds its attempts and keeps the first failure.
INSERT INTO parked_events (follower, notification_id, run_id, event_type, topic, error,
                           attempts, first_failure, last_failure)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
ON CONFLICT (follower, notification_id) DO UPDATE SET
    error = excluded.error,
    attempts = parked_events.attempts + excluded.attempts,
    last_failure = excluded.last_failure;

-- name: counts
-- Every follower that has a checkpoint or parked events, with how many it parked.
SELECT f.name, count(p.notification_id) AS parked
FROM (SELECT name FROM follower_checkpoints
      UNION SELECT DISTINCT follower FROM parked_events) f
LEFT JOIN parked_events p ON p.follower = f.name
GROUP BY f.name
ORDER BY f.name;

-- name: status
SELECT f.name, coalesce(c.position, 0) AS position,
       greatest(h.head - coalesce(c.position, 0), 0) AS lag,
       (SELECT count(*) FROM parked_events p WHERE p.follower = f.name) AS parked
FROM (SELECT name FROM follower_checkpoints
      UNION SELECT DISTINCT follower FROM parked_events) f
LEFT JOIN follower_checkpoints c ON c.name = f.name,
     (SELECT coalesce(max(notification_id), 0) AS head FROM stored_events) h
ORDER BY f.name;

-- name: list
-- $1: one follower or all (NULL); $2: these notification ids or all (NULL).
SELECT follower, notification_id, run_id, event_type, topic, error, attempts,
       first_failure, last_failure
FROM parked_events
WHERE ($1::text IS NULL OR follower = $1)
  AND ($2::bigint[] IS NULL OR notification_id = ANY($2))
ORDER BY notification_id, follower;

-- name: claim_parked
-- A retry holds the parked row for its whole transaction: a second retry of the same event
-- skips it instead of applying it twice; none when it was cleared meanwhile.
SELECT notification_id FROM parked_events WHERE follower = $1 AND notification_id = $2
FOR UPDATE SKIP LOCKED;

-- name: unpark
DELETE FROM parked_events WHERE follower = $1 AND notification_id = $2;

-- name: failed_again
-- A retry that failed: the row it claimed is back (rolled back); count the attempt.
UPDATE parked_events SET error = $3, attempts = attempts + 1, last_failure = now()
WHERE follower = $1 AND notification_id = $2;

-- name: set_lock_timeout
SELECT set_config('lock_timeout', $1::text, true);

-- name: lock_table_ddl
-- A retry rewrites rows the live follower may be folding: the table is locked (reads too,
-- since a follower reads a row before it writes it) for the retry's short transaction.
SELECT format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', $1::text);

-- name: run_has_parked
-- Whether an earlier event of the run is parked for this follower: a later one then fails
-- for that reason (its row was never created), and retrying it only stalls the follower.
SELECT EXISTS (SELECT 1 FROM parked_events WHERE follower = $1 AND run_id = $2);
