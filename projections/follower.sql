-- name: take_lease
-- One active instance per follower: the lease is taken when free, expired (its holder
-- stopped renewing it: hung) or held by a session that no longer exists (its holder died).
-- Returns the new epoch, or no row when someone else holds it.
INSERT INTO follower_leases AS l (name, holder, backend_pid, expires_at)
VALUES ($1, $2, pg_backend_pid(), now() + make_interval(secs => $3))
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder, backend_pid = excluded.backend_pid, epoch = l.epoch + 1,
    acquired_at = now(), expires_at = excluded.expires_at
WHERE l.holder = excluded.holder OR l.expires_at < now()
   OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.backend_pid)
RETURNING epoch;

-- name: renew_lease
-- Still the holder: push the expiry on. No row: someone took it over; step down.
UPDATE follower_leases SET expires_at = now() + make_interval(secs => $3)
WHERE name = $1 AND holder = $2
RETURNING epoch;

-- name: release_lease
-- Stepping down cleanly: a standby may take over at once.
DELETE FROM follower_leases WHERE name = $1 AND holder = $2;

-- name: ensure_checkpoint
INSERT INTO follower_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING;

-- name: read_checkpoint
SELECT position FROM follower_checkpoints WHERE name = $1;

-- name: advance_checkpoint
-- Compare-and-set: moves the checkpoint only from where the batch was read, and only while
-- $4 holds the follower's lease. Anything else (a holder that hung and woke up after a
-- standby took over, a rebuild's swap) makes it return no row, and the batch is rolled back
-- or not recorded.
UPDATE follower_checkpoints SET position = $3, updated_at = now()
WHERE name = $1 AND position = $2
  AND EXISTS (SELECT 1 FROM follower_leases WHERE name = $1 AND holder = $4)
RETURNING position;

-- name: lag
SELECT c.name, greatest(h.head - c.position, 0) AS lag
FROM follower_checkpoints c,
     (SELECT coalesce(max(notification_id), 0) AS head FROM stored_events) h
ORDER BY c.name;
