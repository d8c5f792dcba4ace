-- name: insert_steps
-- A step row is a fact recorded once: a second row for the same (run, index) means the
-- log was applied twice, so it fails loudly rather than being skipped.
INSERT INTO run_steps (run_id, index, action, instruction, status, strategy, healed,
                       duration_ms, attempts, url, error, artifacts, details, recorded_at)
SELECT s.run_id, s.index, s.action, s.instruction, s.status, s.strategy, s.healed,
       s.duration_ms, s.attempts, s.url, s.error, s.artifacts::jsonb, s.details::jsonb,
       s.recorded_at
FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::boolean[], $8::bigint[], $9::integer[], $10::text[], $11::text[],
            $12::text[], $13::text[], $14::timestamptz[])
     AS s(run_id, index, action, instruction, status, strategy, healed, duration_ms,
          attempts, url, error, artifacts, details, recorded_at);
