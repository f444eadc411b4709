-- Quotes (issue 13, item 4): what a job was expected to cost when it was submitted, and, once it finished, what it
-- cost and how far off the quote was. Kept per job (the dashboard's job page) and per take (accuracy per kind).
CREATE TABLE job_quotes (
    job_id uuid PRIMARY KEY REFERENCES jobs (id),
    project text NOT NULL,
    quoted_at timestamptz NOT NULL,
    device_sku text NOT NULL,
    dollars_per_hour numeric(18, 6) NOT NULL,
    device_seconds double precision NOT NULL,
    low_device_seconds double precision NOT NULL,
    high_device_seconds double precision NOT NULL,
    cost numeric(18, 6) NOT NULL,
    low_cost numeric(18, 6) NOT NULL,
    high_cost numeric(18, 6) NOT NULL,
    energy_kwh double precision NOT NULL,
    wall_seconds double precision NULL,
    actual_cost numeric(18, 6) NULL,
    actual_device_seconds double precision NULL,
    error_fraction double precision NULL,
    finished_at timestamptz NULL
);

CREATE TABLE shot_quotes (
    shot_id uuid PRIMARY KEY REFERENCES shots (id),
    job_id uuid NOT NULL REFERENCES jobs (id),
    project text NOT NULL,
    kind text NOT NULL,
    basis text NOT NULL,
    history_shots integer NOT NULL,
    device_seconds double precision NOT NULL,
    cost numeric(18, 6) NOT NULL,
    low_cost numeric(18, 6) NOT NULL,
    high_cost numeric(18, 6) NOT NULL,
    actual_cost numeric(18, 6) NULL,
    actual_device_seconds double precision NULL,
    error_fraction double precision NULL,
    finished_at timestamptz NULL
);
CREATE INDEX ix_shot_quotes_job ON shot_quotes (job_id);
CREATE INDEX ix_shot_quotes_accuracy ON shot_quotes (project, kind, finished_at) WHERE error_fraction IS NOT NULL;

-- Webhooks (issue 13, item 7): subscriptions, and an outbox of deliveries written in the transaction of the change
-- they announce; unique per subscription and event key, so an event handled twice is delivered once.
CREATE TABLE webhook_subscriptions (
    id uuid PRIMARY KEY,
    project text NOT NULL,
    url text NOT NULL,
    events text NOT NULL,
    secret text NOT NULL,
    description text NULL,
    created_at timestamptz NOT NULL,
    created_by_key_id uuid NULL,
    deleted_at timestamptz NULL
);
CREATE INDEX ix_webhook_subscriptions_project ON webhook_subscriptions (project) WHERE deleted_at IS NULL;

CREATE TABLE webhook_deliveries (
    id uuid PRIMARY KEY,
    subscription_id uuid NOT NULL REFERENCES webhook_subscriptions (id),
    project text NOT NULL,
    event text NOT NULL,
    event_key text NOT NULL,
    payload text NOT NULL,
    state text NOT NULL,
    attempts integer NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    finished_at timestamptz NULL,
    UNIQUE (subscription_id, event_key)
);
CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'Pending';
CREATE INDEX ix_webhook_deliveries_subscription ON webhook_deliveries (subscription_id, created_at);

CREATE TABLE webhook_attempts (
    delivery_id uuid NOT NULL REFERENCES webhook_deliveries (id),
    number integer NOT NULL,
    started_at timestamptz NOT NULL,
    status_code integer NULL,
    error text NULL,
    duration_ms double precision NOT NULL,
    PRIMARY KEY (delivery_id, number)
);
