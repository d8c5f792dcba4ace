-- name: rows_of_runs
SELECT id, test_id, test_name, status, attempt, created_at, started_at, completed_at,
       duration_ms, steps_passed, steps_failed, error, error_step, worker, last_event_at,
       version
FROM runs
WHERE id = ANY($1::uuid[]);

-- name: upsert_runs
-- Rows after a batch, folded in Python (projections.run_row): written as they are.
INSERT INTO runs (id, test_id, test_name, status, attempt, created_at, started_at,
                  completed_at, duration_ms, steps_passed, steps_failed, error, error_step,
                  worker, last_event_at, version)
SELECT *
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::integer[],
            $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::bigint[],
            $10::integer[], $11::integer[], $12::text[], $13::integer[], $14::text[],
            $15::timestamptz[], $16::integer[])
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status,
    attempt = excluded.attempt,
    started_at = excluded.started_at,
    completed_at = excluded.completed_at,
    duration_ms = excluded.duration_ms,
    steps_passed = excluded.steps_passed,
    steps_failed = excluded.steps_failed,
    error = excluded.error,
    error_step = excluded.error_step,
    worker = excluded.worker,
    last_event_at = excluded.last_event_at,
    version = excluded.version;
