-- Which instance runs each follower: a lease the holder renews while it makes progress.
-- A standby takes the lease over once it expired (the holder hung: SIGSTOP, a stalled VM)
-- or once the holder's session is gone (it died). The checkpoint's compare-and-set checks
-- the lease too, so a holder that wakes up after losing it cannot write.
CREATE TABLE IF NOT EXISTS follower_leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    -- the holder's PostgreSQL backend: when it is gone, so is the holder
    backend_pid integer NOT NULL,
    -- bumped at every change of holder
    epoch bigint NOT NULL DEFAULT 1,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
