-- A test's retries (0–3): more attempts a failed run gets (ledger.retries). Existing tests
-- get none, as before.
ALTER TABLE tests ADD COLUMN IF NOT EXISTS retries smallint NOT NULL DEFAULT 0
    CHECK (retries BETWEEN 0 AND 3);
