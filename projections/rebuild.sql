-- Rebuild: replay the log into empty copies of the read-model tables in the schema
-- runledger_rebuild, then swap them in. DDL is composed here with format(%I) from catalog
-- identifiers and executed by the caller; no value is ever formatted into SQL.

-- name: try_lock
SELECT pg_try_advisory_lock(hashtextextended('runledger.rebuild', 0));

-- name: unlock
SELECT pg_advisory_unlock(hashtextextended('runledger.rebuild', 0));

-- name: reset_schema
DROP SCHEMA IF EXISTS runledger_rebuild CASCADE;
CREATE SCHEMA runledger_rebuild;

-- name: drop_schema
DROP SCHEMA IF EXISTS runledger_rebuild CASCADE;

-- name: use_rebuild_schema
-- On the rebuild's own connection: the models' unqualified table names now mean the
-- copies. Losing the last commits of a crashed rebuild is harmless: it starts over.
SELECT set_config('search_path', 'runledger_rebuild', false),
       set_config('synchronous_commit', 'off', false);

-- name: live_schema
SELECT n.nspname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass($1::text);

-- name: clone_table
-- Columns, defaults, NOT NULL and CHECK constraints, storage and comments; no indexes yet.
SELECT format('CREATE TABLE runledger_rebuild.%I (LIKE %I.%I INCLUDING ALL EXCLUDING INDEXES)',
              $2::text, $1::text, $2::text);

-- name: constraint_ddl
-- Primary key, unique and exclusion constraints, same names (needed while loading).
SELECT format('ALTER TABLE runledger_rebuild.%I ADD CONSTRAINT %I %s',
              $2::text, con.conname, pg_get_constraintdef(con.oid))
FROM pg_constraint con
WHERE con.conrelid = format('%I.%I', $1::text, $2::text)::regclass
  AND con.contype IN ('p', 'u', 'x')
ORDER BY con.conname;

-- name: index_ddl
-- The other indexes, same names and definitions, built after loading (faster).
SELECT replace(pg_get_indexdef(i.indexrelid),
               format(' ON %I.%I USING ', $1::text, $2::text),
               format(' ON runledger_rebuild.%I USING ', $2::text)) AS ddl
FROM pg_index i
WHERE i.indrelid = format('%I.%I', $1::text, $2::text)::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)
ORDER BY i.indexrelid;

-- name: grant_ddl
-- Privileges granted on the live table, granted again on the copy.
SELECT format('GRANT %s ON runledger_rebuild.%I TO %s', a.privilege_type, $2::text,
              CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                   ELSE quote_ident(pg_get_userbyid(a.grantee)) END)
FROM pg_class c, aclexplode(c.relacl) a
WHERE c.oid = format('%I.%I', $1::text, $2::text)::regclass
  AND a.grantee <> c.relowner;

-- name: analyze_ddl
SELECT format('ANALYZE runledger_rebuild.%I', $1::text);

-- name: count_events
SELECT count(*) FROM stored_events;

-- name: set_lock_timeout
SELECT set_config('lock_timeout', $1::text, true);

-- name: ensure_checkpoint
INSERT INTO follower_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING;

-- name: lock_checkpoint
SELECT position FROM follower_checkpoints WHERE name = $1 FOR UPDATE;

-- name: swap_ddl
-- Lock the live table; drop it; move the copy (its indexes, constraints and their names
-- come along) into its place.
SELECT format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE', $1::text, $2::text) AS lock,
       format('DROP TABLE %I.%I', $1::text, $2::text) AS drop,
       format('ALTER TABLE runledger_rebuild.%I SET SCHEMA %I', $2::text, $1::text) AS move;

-- name: set_checkpoint
UPDATE follower_checkpoints SET position = $2, updated_at = now() WHERE name = $1;

-- name: clone_parked
-- Before the search path moves: the copy the replay parks into, like the live table.
CREATE TABLE runledger_rebuild.parked_events (LIKE parked_events INCLUDING ALL);

-- name: lock_parked
-- After the model tables, before the checkpoint rows: the order a follower's batch takes.
LOCK TABLE parked_events IN EXCLUSIVE MODE;

-- name: unpark_models
-- The rebuilt models' parked events are those the replay parked, no others.
DELETE FROM parked_events WHERE follower = ANY($1::text[]);

-- name: move_parked
INSERT INTO parked_events SELECT * FROM runledger_rebuild.parked_events;

-- name: count_parked
SELECT count(*) FROM runledger_rebuild.parked_events;
