-- Read queries over the runs / run_steps models, for the API and the worker.
-- Listing is newest first, keyset-paginated on (created_at, id): one variant per filter
-- combination, so each uses its own index instead of a generic plan over optional filters.
-- The first page passes a position after every run (year 9999, the largest uuid), so the
-- keyset condition is always an index condition.

-- name: get_run
SELECT id, test_id, test_name, status, attempt, created_at, started_at, completed_at,
       duration_ms, steps_passed, steps_failed, error, error_step, worker, last_event_at,
       version
FROM runs WHERE id = $1;

-- name: list_runs
SELECT id, test_id, test_name, status, attempt, created_at, started_at, completed_at,
       duration_ms, steps_passed, steps_failed, error, error_step, worker, last_event_at,
       version
FROM runs
WHERE (created_at, id) < ($1::timestamptz, $2::uuid)
ORDER BY created_at DESC, id DESC
LIMIT $3;

-- name: list_runs_by_status
SELECT id, test_id, test_name, status, attempt, created_at, started_at, completed_at,
       duration_ms, steps_passed, steps_failed, error, error_step, worker, last_event_at,
       version
FROM runs
WHERE status = $4 AND (created_at, id) < ($1::timestamptz, $2::uuid)
ORDER BY created_at DESC, id DESC
LIMIT $3;

-- name: list_runs_by_test
SELECT id, test_id, test_name, status, attempt, created_at, started_at, completed_at,
       duration_ms, steps_passed, steps_failed, error, error_step, worker, last_event_at,
       version
FROM runs
WHERE test_id = $4 AND (created_at, id) < ($1::timestamptz, $2::uuid)
ORDER BY created_at DESC, id DESC
LIMIT $3;

-- name: list_runs_by_test_and_status
SELECT id, test_id, test_name, status, attempt, created_at, started_at, completed_at,
       duration_ms, steps_passed, steps_failed, error, error_step, worker, last_event_at,
       version
FROM runs
WHERE test_id = $4 AND status = $5
  AND (created_at, id) < ($1::timestamptz, $2::uuid)
ORDER BY created_at DESC, id DESC
LIMIT $3;

-- name: run_steps
SELECT run_id, index, action, instruction, status, strategy, healed, duration_ms, attempts,
       url, error, artifacts, details, recorded_at
FROM run_steps WHERE run_id = $1
ORDER BY index;

-- name: stuck_runs
-- Served by the partial index runs_running_started_idx.
SELECT id, version FROM runs
WHERE status = 'running' AND started_at < $1
ORDER BY started_at
LIMIT $2;

-- name: count_by_status
SELECT status, count(*) AS runs FROM runs GROUP BY status;

-- name: listed_position
-- How far the runs model has applied the log (its follower's checkpoint): a run whose
-- events are all at or before it is listed as they left it.
SELECT coalesce((SELECT position FROM follower_checkpoints WHERE name = 'runs'), 0);
