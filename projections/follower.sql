-- name: try_lock
-- One active instance per follower: a session-level advisory lock keyed by the name.
SELECT pg_try_advisory_lock(hashtextextended('runledger.follower:' || $1::text, 0));

-- name: ensure_checkpoint
INSERT INTO follower_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING;

-- name: read_checkpoint
SELECT position FROM follower_checkpoints WHERE name = $1;

-- name: advance_checkpoint
-- Compare-and-set: moves the checkpoint only from where the batch was read. Anything else
-- that moved it (an instance that lost its lock late, a rebuild's swap) makes it return
-- no row, and the batch is rolled back or not recorded.
UPDATE follower_checkpoints SET position = $3, updated_at = now()
WHERE name = $1 AND position = $2
RETURNING position;

-- name: lag
SELECT c.name, greatest(h.head - c.position, 0) AS lag
FROM follower_checkpoints c,
     (SELECT coalesce(max(notification_id), 0) AS head FROM stored_events) h
ORDER BY c.name;
