-- name: lock_pending
-- The batch's runs that were queued in an earlier batch, locked for the batch.
SELECT run_id, test_id, started_at
FROM test_stats_pending
WHERE run_id = ANY($1::uuid[])
FOR UPDATE;

-- name: upsert_pending
INSERT INTO test_stats_pending (run_id, test_id, started_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[])
ON CONFLICT (run_id) DO UPDATE SET started_at = excluded.started_at;

-- name: delete_pending
DELETE FROM test_stats_pending WHERE run_id = ANY($1::uuid[]);

-- name: lock_stats
SELECT test_id, runs, passed, recent
FROM test_stats
WHERE test_id = ANY($1::text[])
FOR UPDATE;

-- name: upsert_stats
INSERT INTO test_stats (test_id, runs, passed, recent, updated_at)
SELECT s.test_id, s.runs, s.passed, s.recent::jsonb, s.updated_at
FROM unnest($1::text[], $2::integer[], $3::integer[], $4::text[], $5::timestamptz[])
     AS s(test_id, runs, passed, recent, updated_at)
ON CONFLICT (test_id) DO UPDATE SET
    runs = excluded.runs,
    passed = excluded.passed,
    recent = excluded.recent,
    updated_at = excluded.updated_at;

-- name: stats_of_tests
SELECT test_id, runs, passed, recent
FROM test_stats
WHERE test_id = ANY($1::text[]);
