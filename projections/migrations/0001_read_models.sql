-- Read models derived from the event log, and where each follower has got to in it.
-- Everything here can be rebuilt from stored_events (`runledger rebuild`).

-- One row per run: the state after the event at `version`.
CREATE TABLE IF NOT EXISTS runs (
    id uuid PRIMARY KEY,
    test_id text NOT NULL,
    test_name text NOT NULL,
    status text NOT NULL
        CHECK (status IN ('queued', 'running', 'passed', 'failed', 'cancelled')),
    attempt integer NOT NULL,
    created_at timestamptz NOT NULL,
    started_at timestamptz,
    completed_at timestamptz,
    duration_ms integer,
    steps_passed integer NOT NULL DEFAULT 0,
    steps_failed integer NOT NULL DEFAULT 0,
    error text,
    error_step integer,
    worker text,
    last_event_at timestamptz NOT NULL,
    version integer NOT NULL
);

-- Listing newest first with a keyset cursor on (created_at, id): all runs, a test's runs,
-- runs in a status. Ascending indexes serve the descending order by scanning backwards.
CREATE INDEX IF NOT EXISTS runs_created_idx ON runs (created_at, id);
CREATE INDEX IF NOT EXISTS runs_test_created_idx ON runs (test_id, created_at, id);
CREATE INDEX IF NOT EXISTS runs_status_created_idx ON runs (status, created_at, id);
-- Stuck-run recovery: running runs started before a cut-off. Partial, so it stays as
-- small as the number of runs in flight.
CREATE INDEX IF NOT EXISTS runs_running_started_idx ON runs (started_at)
    WHERE status = 'running';

-- One row per `step` event. A step's result never changes once recorded.
CREATE TABLE IF NOT EXISTS run_steps (
    run_id uuid NOT NULL,
    index integer NOT NULL,
    action text NOT NULL,
    instruction text NOT NULL,
    status text NOT NULL CHECK (status IN ('passed', 'failed')),
    strategy text,
    healed boolean NOT NULL DEFAULT false,
    duration_ms integer NOT NULL,
    attempts integer NOT NULL,
    url text,
    error text,
    artifacts jsonb NOT NULL DEFAULT '[]',
    details jsonb NOT NULL DEFAULT '{}',
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (run_id, index)
);

-- Each follower's position in the log (the notification id of the last event it applied).
-- Read-model followers update their row in the same transaction as their rows: exactly once.
CREATE TABLE IF NOT EXISTS follower_checkpoints (
    name text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0 CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
