-- Queries of api.definitions.PgTestRepository over the tests table.

-- name: insert_test
INSERT INTO tests (id, name, url, definition, auto_handle_popups, retries)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, name, url, definition, auto_handle_popups, retries, version, created_at, updated_at;

-- name: get_test
SELECT id, name, url, definition, auto_handle_popups, retries, version, created_at, updated_at
FROM tests
WHERE id = $1;

-- name: update_test
-- $7: the version named by If-Match, or NULL to overwrite whatever is current.
UPDATE tests
SET name = $2, url = $3, definition = $4, auto_handle_popups = $5, retries = $6,
    version = version + 1, updated_at = now()
WHERE id = $1 AND ($7::integer IS NULL OR version = $7)
RETURNING id, name, url, definition, auto_handle_popups, retries, version, created_at, updated_at;

-- name: delete_test
DELETE FROM tests
WHERE id = $1 AND ($2::integer IS NULL OR version = $2)
RETURNING id;

-- name: exists_test
SELECT EXISTS (SELECT 1 FROM tests WHERE id = $1);

-- name: list_tests
-- Keyset page, newest first: $1/$2 are the (created_at, id) of the previous page's last row.
SELECT id, name, url, definition, auto_handle_popups, retries, version, created_at, updated_at
FROM tests
WHERE $1::timestamptz IS NULL OR (created_at, id) < ($1::timestamptz, $2::uuid)
ORDER BY created_at DESC, id DESC
LIMIT $3;
