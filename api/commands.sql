-- Queries of api.commands.RunCommands: idempotency keys of POST /runs.

-- name: find_key
-- A live key (younger than $3 seconds) and what it was used for.
SELECT request_hash, run_id
FROM idempotency_keys
WHERE scope = $1 AND key = $2 AND created_at >= now() - make_interval(secs => $3);

-- name: claim_key
-- Claims a key for a new run: inserts it, or takes over an expired one. Returns nothing
-- when a live row exists; if that row is still uncommitted (the same request retried while
-- the first is in flight) this waits for it, so the retry then sees the first run.
INSERT INTO idempotency_keys (scope, key, request_hash, run_id)
VALUES ($1, $2, $3, $4)
ON CONFLICT (scope, key) DO UPDATE
    SET request_hash = EXCLUDED.request_hash, run_id = EXCLUDED.run_id, created_at = now()
    WHERE idempotency_keys.created_at < now() - make_interval(secs => $5)
RETURNING run_id;

-- name: delete_expired_keys
DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1);
