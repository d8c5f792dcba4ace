-- name: lock
SELECT pg_advisory_lock(7312001);

-- name: unlock
SELECT pg_advisory_unlock(7312001);

-- name: create_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    component text NOT NULL,
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
);

-- name: applied
SELECT component, version, checksum FROM schema_migrations;

-- name: record
INSERT INTO schema_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4);
