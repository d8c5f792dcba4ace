-- Queries of the operational routes (api.routes.ops).

-- name: ping
SELECT 1;
