-- Reads that stay fast at a million tasks and ten million ledger rows (issue 14); see the PostgreSQL script for why.
ALTER TABLE jobs ADD COLUMN task_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE shots ADD COLUMN task_count INTEGER NOT NULL DEFAULT 0;
UPDATE shots SET task_count = (SELECT count(*) FROM tasks WHERE tasks.shot_id = shots.id);
UPDATE jobs SET task_count = (SELECT count(*) FROM tasks WHERE tasks.job_id = jobs.id);

ALTER TABLE shots ADD COLUMN planned_at TEXT NULL;
UPDATE shots SET planned_at = strftime('%Y-%m-%d %H:%M:%f', 'now');

DROP INDEX ix_tasks_shot;
CREATE INDEX ix_tasks_job_order ON tasks (job_id, id);

CREATE TABLE task_count_rollups (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id),
    counted_at TEXT NOT NULL
);
CREATE TABLE shot_task_counts (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    shot_id TEXT NOT NULL REFERENCES shots (id),
    state TEXT NOT NULL,
    tasks INTEGER NOT NULL,
    weight INTEGER NOT NULL,
    weighted_progress REAL NOT NULL,
    PRIMARY KEY (job_id, shot_id, state)
);

-- The ledger's decimals are text here: cost goes in as whole micro-dollars (six decimals, exact below 2^53).
CREATE TABLE usage_rollups (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    shot_id TEXT NOT NULL REFERENCES shots (id),
    device_sku TEXT NOT NULL,
    dollars_per_hour TEXT NOT NULL,
    energy_estimated INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    cost_micros INTEGER NOT NULL,
    device_seconds REAL NOT NULL,
    energy_joules REAL NOT NULL,
    PRIMARY KEY (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated)
);
INSERT INTO usage_rollups (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated, attempts, cost_micros, device_seconds, energy_joules)
SELECT job_id, shot_id, device_sku, dollars_per_hour, energy_estimated, count(*), sum(CAST(round(CAST(cost AS REAL) * 1000000) AS INTEGER)), sum(device_seconds), sum(energy_joules)
FROM usage_ledger GROUP BY job_id, shot_id, device_sku, dollars_per_hour, energy_estimated;

CREATE TRIGGER usage_ledger_roll_up AFTER INSERT ON usage_ledger
BEGIN
    INSERT INTO usage_rollups (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated, attempts, cost_micros, device_seconds, energy_joules)
    VALUES (NEW.job_id, NEW.shot_id, NEW.device_sku, NEW.dollars_per_hour, NEW.energy_estimated, 1, CAST(round(CAST(NEW.cost AS REAL) * 1000000) AS INTEGER), NEW.device_seconds, NEW.energy_joules)
    ON CONFLICT (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated) DO UPDATE
    SET attempts = attempts + 1,
        cost_micros = cost_micros + excluded.cost_micros,
        device_seconds = device_seconds + excluded.device_seconds,
        energy_joules = energy_joules + excluded.energy_joules;
END;
