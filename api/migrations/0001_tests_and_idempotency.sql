-- Tests (the definitions users run) and the idempotency keys of POST /runs.

CREATE TABLE IF NOT EXISTS tests (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    url text NOT NULL,
    -- {"steps": [...]} exactly as validated by ledger.definition.TestSpec
    definition jsonb NOT NULL,
    auto_handle_popups boolean NOT NULL DEFAULT true,
    -- bumped by every update; exposed as the ETag for If-Match
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Keyset pagination of GET /tests: newest first, id breaks ties.
CREATE INDEX IF NOT EXISTS tests_created_at_id_idx ON tests (created_at DESC, id DESC);

-- A key returns the run it created for the same request (same scope, same body hash)
-- until it expires. The row is inserted in the SAME transaction as the run's queued event,
-- so a key never points at a run that was not stored, and a retry racing the first request
-- waits on the primary key instead of queuing a second run.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope text NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    run_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

CREATE INDEX IF NOT EXISTS idempotency_keys_created_at_idx ON idempotency_keys (created_at);
