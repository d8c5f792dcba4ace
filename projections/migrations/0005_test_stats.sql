-- The test_stats read model (projections.test_stats): per test, its finished runs' results
-- (the last 30, oldest first) and counts since the first run. Rebuildable from the log.
CREATE TABLE IF NOT EXISTS test_stats (
    test_id text PRIMARY KEY,
    runs integer NOT NULL DEFAULT 0 CHECK (runs >= 0),
    passed integer NOT NULL DEFAULT 0 CHECK (passed >= 0),
    -- [{"run_id", "status", "duration_ms", "finished_at"}], oldest first, at most 30
    recent jsonb NOT NULL DEFAULT '[]',
    updated_at timestamptz NOT NULL
);

-- Runs queued but not finished yet: a terminal event names only its run, the queued event
-- names the test. A row goes when its run ends.
CREATE TABLE IF NOT EXISTS test_stats_pending (
    run_id uuid PRIMARY KEY,
    test_id text NOT NULL,
    started_at timestamptz
);
