-- Issue 13: the price book, CO2e on every ledger row, a per-project spend counter, budgets and their alerts.

-- Effective-dated prices per device SKU: farm-wide (project '') or a project's override. Rows are never edited: a
-- new price is a new row from its effective time, so the book says what was in force at any moment. '' rather
-- than NULL for "farm-wide" so that the unique key holds on both providers.
CREATE TABLE device_prices (
    id bigserial PRIMARY KEY,
    sku text NOT NULL,
    project text NOT NULL DEFAULT '',
    effective_from timestamptz NOT NULL,
    dollars_per_hour numeric(18, 6) NOT NULL CHECK (dollars_per_hour >= 0),
    rated_watts double precision NOT NULL CHECK (rated_watts >= 0),
    created_at timestamptz NOT NULL,
    UNIQUE (sku, project, effective_from)
);

-- Grid carbon intensity per pool (or '*': every pool without its own), effective-dated like prices.
CREATE TABLE carbon_intensities (
    id bigserial PRIMARY KEY,
    pool text NOT NULL,
    project text NOT NULL DEFAULT '',
    effective_from timestamptz NOT NULL,
    grams_per_kwh double precision NOT NULL CHECK (grams_per_kwh >= 0),
    created_at timestamptz NOT NULL,
    UNIQUE (pool, project, effective_from)
);

-- Each row keeps the intensity it was billed at; rows billed before the price book have none (NULL, counted as 0 g).
ALTER TABLE usage_ledger ADD COLUMN pool text NULL;
ALTER TABLE usage_ledger ADD COLUMN grams_co2e_per_kwh double precision NULL;
ALTER TABLE usage_ledger ADD COLUMN co2e_grams double precision NULL;
ALTER TABLE usage_rollups ADD COLUMN co2e_grams double precision NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION usage_ledger_roll_up() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_rollups AS r (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated, attempts, cost_micros, device_seconds, energy_joules, co2e_grams)
    VALUES (NEW.job_id, NEW.shot_id, NEW.device_sku, NEW.dollars_per_hour, NEW.energy_estimated, 1, (NEW.cost * 1000000)::bigint, NEW.device_seconds, NEW.energy_joules, coalesce(NEW.co2e_grams, 0))
    ON CONFLICT (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated) DO UPDATE
    SET attempts = r.attempts + 1,
        cost_micros = r.cost_micros + excluded.cost_micros,
        device_seconds = r.device_seconds + excluded.device_seconds,
        energy_joules = r.energy_joules + excluded.energy_joules,
        co2e_grams = r.co2e_grams + excluded.co2e_grams;
    RETURN NULL;
END;
$$;

-- What each project has spent, kept in the ledger row's own transaction: the dispatcher's hard-budget predicate and
-- the budget endpoint read one row instead of summing the ledger.
CREATE TABLE project_spend (
    project text PRIMARY KEY,
    attempts bigint NOT NULL,
    cost_micros bigint NOT NULL,
    device_seconds double precision NOT NULL,
    energy_joules double precision NOT NULL,
    co2e_grams double precision NOT NULL
);
INSERT INTO project_spend (project, attempts, cost_micros, device_seconds, energy_joules, co2e_grams)
SELECT project, count(*), sum((cost * 1000000)::bigint), sum(device_seconds), sum(energy_joules), 0
FROM usage_ledger GROUP BY project;

-- A budget in whole micro-dollars (the ledger's unit), its soft threshold precomputed in the same unit.
CREATE TABLE project_budgets (
    project text PRIMARY KEY,
    limit_micros bigint NOT NULL CHECK (limit_micros > 0),
    soft_fraction double precision NOT NULL CHECK (soft_fraction > 0 AND soft_fraction <= 1),
    soft_micros bigint NOT NULL CHECK (soft_micros > 0 AND soft_micros <= limit_micros),
    updated_at timestamptz NOT NULL
);

-- One row per crossing of a threshold (spend going from below to at-or-above it, by billing or by a lowered budget);
-- relayed_at is set once every IBudgetAlertSink (log, webhooks) has been told.
CREATE TABLE budget_alerts (
    id bigserial PRIMARY KEY,
    project text NOT NULL,
    level text NOT NULL CHECK (level IN ('soft', 'hard')),
    crossed_at timestamptz NOT NULL,
    spent_micros bigint NOT NULL,
    limit_micros bigint NOT NULL,
    relayed_at timestamptz NULL
);
CREATE INDEX ix_budget_alerts_project ON budget_alerts (project, id);
CREATE INDEX ix_budget_alerts_unrelayed ON budget_alerts (id) WHERE relayed_at IS NULL;

CREATE FUNCTION usage_ledger_project_spend() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    micros bigint := (NEW.cost * 1000000)::bigint;
    spent bigint;
BEGIN
    INSERT INTO project_spend AS s (project, attempts, cost_micros, device_seconds, energy_joules, co2e_grams)
    VALUES (NEW.project, 1, micros, NEW.device_seconds, NEW.energy_joules, coalesce(NEW.co2e_grams, 0))
    ON CONFLICT (project) DO UPDATE
    SET attempts = s.attempts + 1,
        cost_micros = s.cost_micros + excluded.cost_micros,
        device_seconds = s.device_seconds + excluded.device_seconds,
        energy_joules = s.energy_joules + excluded.energy_joules,
        co2e_grams = s.co2e_grams + excluded.co2e_grams
    RETURNING cost_micros INTO spent;
    -- The spend row is locked until commit, so concurrent bills see each other's sums and each crossing is one row.
    INSERT INTO budget_alerts (project, level, crossed_at, spent_micros, limit_micros)
    SELECT NEW.project, l.level, NEW.recorded_at, spent, b.limit_micros
    FROM project_budgets AS b
    CROSS JOIN LATERAL (VALUES (1, 'soft', b.soft_micros), (2, 'hard', b.limit_micros)) AS l(ord, level, threshold)
    WHERE b.project = NEW.project AND spent >= l.threshold AND spent - micros < l.threshold
    ORDER BY l.ord;
    RETURN NULL;
END;
$$;
CREATE TRIGGER usage_ledger_project_spend AFTER INSERT ON usage_ledger
    FOR EACH ROW EXECUTE FUNCTION usage_ledger_project_spend();
