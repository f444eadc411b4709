-- Quotes and webhooks (issue 13, items 4 and 7): see the PostgreSQL script.
CREATE TABLE job_quotes (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id),
    project TEXT NOT NULL,
    quoted_at TEXT NOT NULL,
    device_sku TEXT NOT NULL,
    dollars_per_hour TEXT NOT NULL,
    device_seconds REAL NOT NULL,
    low_device_seconds REAL NOT NULL,
    high_device_seconds REAL NOT NULL,
    cost TEXT NOT NULL,
    low_cost TEXT NOT NULL,
    high_cost TEXT NOT NULL,
    energy_kwh REAL NOT NULL,
    wall_seconds REAL NULL,
    actual_cost TEXT NULL,
    actual_device_seconds REAL NULL,
    error_fraction REAL NULL,
    finished_at TEXT NULL
);

CREATE TABLE shot_quotes (
    shot_id TEXT PRIMARY KEY REFERENCES shots (id),
    job_id TEXT NOT NULL REFERENCES jobs (id),
    project TEXT NOT NULL,
    kind TEXT NOT NULL,
    basis TEXT NOT NULL,
    history_shots INTEGER NOT NULL,
    device_seconds REAL NOT NULL,
    cost TEXT NOT NULL,
    low_cost TEXT NOT NULL,
    high_cost TEXT NOT NULL,
    actual_cost TEXT NULL,
    actual_device_seconds REAL NULL,
    error_fraction REAL NULL,
    finished_at TEXT NULL
);
CREATE INDEX ix_shot_quotes_job ON shot_quotes (job_id);
CREATE INDEX ix_shot_quotes_accuracy ON shot_quotes (project, kind, finished_at) WHERE error_fraction IS NOT NULL;

-- Webhooks (issue 13, item 7): subscriptions, and an outbox of deliveries written in the transaction of the change
-- they announce; unique per subscription and event key, so an event handled twice is delivered once.
CREATE TABLE webhook_subscriptions (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    description TEXT NULL,
    created_at TEXT NOT NULL,
    created_by_key_id TEXT NULL,
    deleted_at TEXT NULL
);
CREATE INDEX ix_webhook_subscriptions_project ON webhook_subscriptions (project) WHERE deleted_at IS NULL;

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id),
    project TEXT NOT NULL,
    event TEXT NOT NULL,
    event_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT NULL,
    UNIQUE (subscription_id, event_key)
);
CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'Pending';
CREATE INDEX ix_webhook_deliveries_subscription ON webhook_deliveries (subscription_id, created_at);

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id),
    number INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    status_code INTEGER NULL,
    error TEXT NULL,
    duration_ms REAL NOT NULL,
    PRIMARY KEY (delivery_id, number)
);
