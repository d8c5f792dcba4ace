-- Locator memory: for each (page, action, instruction) key, the locator that last worked
-- and how reliable it has been. A read model of `step` events (follower "locator_memory",
-- checkpoint in follower_checkpoints): it can be dropped and rebuilt from the log.
CREATE TABLE IF NOT EXISTS locator_memory (
    key text PRIMARY KEY,
    url text NOT NULL,
    action text NOT NULL,
    instruction text NOT NULL,
    locator text NOT NULL,
    fingerprint jsonb NOT NULL DEFAULT '{}',
    successes integer NOT NULL DEFAULT 0 CHECK (successes >= 0),
    failures integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    updated_at timestamptz NOT NULL
);

-- The executor fetches a run's entries at once by (action, instruction): the URL part of
-- the key is only known step by step, as the run navigates.
CREATE INDEX IF NOT EXISTS locator_memory_action_instruction_idx
    ON locator_memory (action, instruction);
