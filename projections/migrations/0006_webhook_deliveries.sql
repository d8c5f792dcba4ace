-- Webhook deliveries by outcome (projections.webhooks): counted by the webhooks follower,
-- read by /metrics. One row per outcome: delivered, failed_attempt, gave_up.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    outcome text PRIMARY KEY,
    count bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
