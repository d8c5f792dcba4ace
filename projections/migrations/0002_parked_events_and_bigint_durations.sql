-- Followers survive poison: an event a follower cannot apply (after bounded retries), or
-- cannot even decode, is parked here and the follower moves on. The log is immutable, so
-- the event stays; `runledger followers retry` re-applies it once the code is fixed.
-- A transactional follower writes its row in the same transaction as its checkpoint.
CREATE TABLE IF NOT EXISTS parked_events (
    follower text NOT NULL,
    notification_id bigint NOT NULL,
    run_id uuid NOT NULL,
    event_type text NOT NULL,
    topic text NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL CHECK (attempts >= 1),
    first_failure timestamptz NOT NULL,
    last_failure timestamptz NOT NULL,
    PRIMARY KEY (follower, notification_id)
);

-- A run may last longer than an integer of milliseconds holds (~24.8 days) before its
-- terminal event: the duration must not overflow and stop the runs follower.
ALTER TABLE runs ALTER COLUMN duration_ms TYPE bigint;
ALTER TABLE run_steps ALTER COLUMN duration_ms TYPE bigint;
