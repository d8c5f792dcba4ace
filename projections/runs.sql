-- name: insert_runs
-- Runs created in this batch, in their state after the batch's last event of each.
INSERT INTO runs (id, test_id, test_name, status, attempt, created_at, started_at,
                  completed_at, duration_ms, steps_passed, steps_failed, error, error_step,
                  worker, last_event_at, version)
SELECT p.id, p.test_id, p.test_name, p.status, p.attempt, p.created_at, p.started_at,
       p.completed_at,
       coalesce(p.duration_ms,
                round(extract(epoch FROM p.completed_at - p.started_at) * 1000)::integer),
       p.steps_passed, p.steps_failed, p.error, p.error_step, p.worker, p.last_event_at,
       p.version
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::integer[],
            $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::integer[],
            $10::integer[], $11::integer[], $12::text[], $13::integer[], $14::text[],
            $15::timestamptz[], $16::integer[])
     AS p(id, test_id, test_name, status, attempt, created_at, started_at, completed_at,
          duration_ms, steps_passed, steps_failed, error, error_step, worker,
          last_event_at, version);

-- name: update_runs
-- Runs created in an earlier batch: a patch per run. NULL means "not set by this batch";
-- step counts are increments. A terminal event without a duration of its own (errored,
-- timed-out, cancelled) gets the time since start, which may lie in an earlier batch.
UPDATE runs AS r SET
    status = coalesce(p.status, r.status),
    attempt = coalesce(p.attempt, r.attempt),
    started_at = coalesce(p.started_at, r.started_at),
    completed_at = coalesce(p.completed_at, r.completed_at),
    duration_ms = CASE
        WHEN p.completed_at IS NULL THEN r.duration_ms
        ELSE coalesce(p.duration_ms, round(extract(
            epoch FROM p.completed_at - coalesce(p.started_at, r.started_at)) * 1000)::integer)
    END,
    steps_passed = r.steps_passed + p.steps_passed,
    steps_failed = r.steps_failed + p.steps_failed,
    error = coalesce(p.error, r.error),
    error_step = coalesce(p.error_step, r.error_step),
    worker = coalesce(p.worker, r.worker),
    last_event_at = p.last_event_at,
    version = p.version
FROM unnest($1::uuid[], $2::text[], $3::integer[], $4::timestamptz[], $5::timestamptz[],
            $6::integer[], $7::integer[], $8::integer[], $9::text[], $10::integer[],
            $11::text[], $12::timestamptz[], $13::integer[])
     AS p(id, status, attempt, started_at, completed_at, duration_ms, steps_passed,
          steps_failed, error, error_step, worker, last_event_at, version)
WHERE r.id = p.id;

-- name: existing_runs
SELECT id FROM runs WHERE id = ANY($1::uuid[]);
