-- name: lock_entries
-- The batch's entries, locked: a rebuild or a late second instance cannot interleave.
SELECT key, url, action, instruction, locator, fingerprint, successes, failures,
       consecutive_failures, updated_at::text
FROM locator_memory
WHERE key = ANY($1::text[])
FOR UPDATE;

-- name: upsert_entries
INSERT INTO locator_memory (key, url, action, instruction, locator, fingerprint, successes,
                            failures, consecutive_failures, updated_at)
SELECT e.key, e.url, e.action, e.instruction, e.locator, e.fingerprint::jsonb, e.successes,
       e.failures, e.consecutive_failures, e.updated_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::integer[], $8::integer[], $9::integer[], $10::timestamptz[])
     AS e(key, url, action, instruction, locator, fingerprint, successes, failures,
          consecutive_failures, updated_at)
ON CONFLICT (key) DO UPDATE SET
    url = excluded.url,
    action = excluded.action,
    instruction = excluded.instruction,
    locator = excluded.locator,
    fingerprint = excluded.fingerprint,
    successes = excluded.successes,
    failures = excluded.failures,
    consecutive_failures = excluded.consecutive_failures,
    updated_at = excluded.updated_at;

-- name: delete_entries
DELETE FROM locator_memory WHERE key = ANY($1::text[]);

-- name: entries_for_steps
-- Every entry of the given (action, instruction) pairs, whatever page they were learnt on.
SELECT m.key, m.url, m.action, m.instruction, m.locator, m.fingerprint, m.successes,
       m.failures, m.consecutive_failures, m.updated_at::text
FROM locator_memory m
JOIN unnest($1::text[], $2::text[]) AS s(action, instruction)
  ON m.action = s.action AND m.instruction = s.instruction;

-- name: entries_by_key
SELECT key, url, action, instruction, locator, fingerprint, successes, failures,
       consecutive_failures, updated_at::text
FROM locator_memory
WHERE key = ANY($1::text[]);
