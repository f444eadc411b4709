-- Issue 13: the price book, CO2e on every ledger row, a per-project spend counter, budgets and their alerts; see
-- the PostgreSQL script for why. Money is text here, so sums go through whole micro-dollars.
CREATE TABLE device_prices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sku TEXT NOT NULL,
    project TEXT NOT NULL DEFAULT '',
    effective_from TEXT NOT NULL,
    dollars_per_hour TEXT NOT NULL,
    rated_watts REAL NOT NULL CHECK (rated_watts >= 0),
    created_at TEXT NOT NULL,
    UNIQUE (sku, project, effective_from)
);

CREATE TABLE carbon_intensities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pool TEXT NOT NULL,
    project TEXT NOT NULL DEFAULT '',
    effective_from TEXT NOT NULL,
    grams_per_kwh REAL NOT NULL CHECK (grams_per_kwh >= 0),
    created_at TEXT NOT NULL,
    UNIQUE (pool, project, effective_from)
);

ALTER TABLE usage_ledger ADD COLUMN pool TEXT NULL;
ALTER TABLE usage_ledger ADD COLUMN grams_co2e_per_kwh REAL NULL;
ALTER TABLE usage_ledger ADD COLUMN co2e_grams REAL NULL;
ALTER TABLE usage_rollups ADD COLUMN co2e_grams REAL NOT NULL DEFAULT 0;

DROP TRIGGER usage_ledger_roll_up;
CREATE TRIGGER usage_ledger_roll_up AFTER INSERT ON usage_ledger
BEGIN
    INSERT INTO usage_rollups (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated, attempts, cost_micros, device_seconds, energy_joules, co2e_grams)
    VALUES (NEW.job_id, NEW.shot_id, NEW.device_sku, NEW.dollars_per_hour, NEW.energy_estimated, 1, CAST(round(CAST(NEW.cost AS REAL) * 1000000) AS INTEGER), NEW.device_seconds, NEW.energy_joules, coalesce(NEW.co2e_grams, 0))
    ON CONFLICT (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated) DO UPDATE
    SET attempts = attempts + 1,
        cost_micros = cost_micros + excluded.cost_micros,
        device_seconds = device_seconds + excluded.device_seconds,
        energy_joules = energy_joules + excluded.energy_joules,
        co2e_grams = co2e_grams + excluded.co2e_grams;
END;

CREATE TABLE project_spend (
    project TEXT PRIMARY KEY,
    attempts INTEGER NOT NULL,
    cost_micros INTEGER NOT NULL,
    device_seconds REAL NOT NULL,
    energy_joules REAL NOT NULL,
    co2e_grams REAL NOT NULL
);
INSERT INTO project_spend (project, attempts, cost_micros, device_seconds, energy_joules, co2e_grams)
SELECT project, count(*), sum(CAST(round(CAST(cost AS REAL) * 1000000) AS INTEGER)), sum(device_seconds), sum(energy_joules), 0
FROM usage_ledger GROUP BY project;

CREATE TABLE project_budgets (
    project TEXT PRIMARY KEY,
    limit_micros INTEGER NOT NULL CHECK (limit_micros > 0),
    soft_fraction REAL NOT NULL CHECK (soft_fraction > 0 AND soft_fraction <= 1),
    soft_micros INTEGER NOT NULL CHECK (soft_micros > 0 AND soft_micros <= limit_micros),
    updated_at TEXT NOT NULL
);

CREATE TABLE budget_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('soft', 'hard')),
    crossed_at TEXT NOT NULL,
    spent_micros INTEGER NOT NULL,
    limit_micros INTEGER NOT NULL,
    relayed_at TEXT NULL
);
CREATE INDEX ix_budget_alerts_project ON budget_alerts (project, id);
CREATE INDEX ix_budget_alerts_unrelayed ON budget_alerts (id) WHERE relayed_at IS NULL;

CREATE TRIGGER usage_ledger_project_spend AFTER INSERT ON usage_ledger
BEGIN
    INSERT INTO project_spend (project, attempts, cost_micros, device_seconds, energy_joules, co2e_grams)
    VALUES (NEW.project, 1, CAST(round(CAST(NEW.cost AS REAL) * 1000000) AS INTEGER), NEW.device_seconds, NEW.energy_joules, coalesce(NEW.co2e_grams, 0))
    ON CONFLICT (project) DO UPDATE
    SET attempts = attempts + 1,
        cost_micros = cost_micros + excluded.cost_micros,
        device_seconds = device_seconds + excluded.device_seconds,
        energy_joules = energy_joules + excluded.energy_joules,
        co2e_grams = co2e_grams + excluded.co2e_grams;
    INSERT INTO budget_alerts (project, level, crossed_at, spent_micros, limit_micros)
    SELECT NEW.project, l.level, NEW.recorded_at, s.cost_micros, b.limit_micros
    FROM project_budgets AS b
    JOIN project_spend AS s ON s.project = b.project
    JOIN (SELECT 1 AS ord, 'soft' AS level UNION ALL SELECT 2, 'hard') AS l
    WHERE b.project = NEW.project
      AND s.cost_micros >= CASE l.level WHEN 'soft' THEN b.soft_micros ELSE b.limit_micros END
      AND s.cost_micros - CAST(round(CAST(NEW.cost AS REAL) * 1000000) AS INTEGER) < CASE l.level WHEN 'soft' THEN b.soft_micros ELSE b.limit_micros END
    ORDER BY l.ord;
END;
