-- Queries of projections.webhooks.

-- name: count
INSERT INTO webhook_deliveries (outcome, count, updated_at) VALUES ($1, $2, now())
ON CONFLICT (outcome) DO UPDATE SET
    count = webhook_deliveries.count + excluded.count, updated_at = now();

-- name: counts
SELECT outcome, count FROM webhook_deliveries;

-- name: queued_event
SELECT notification_id, originator_id, originator_version, topic, state
FROM stored_events
WHERE originator_id = $1 AND originator_version = 1;
