-- Per-job budgets (issue 13, item 3): see the PostgreSQL migration.
CREATE TABLE job_spend (
    job_id TEXT PRIMARY KEY,
    cost_micros INTEGER NOT NULL
);
INSERT INTO job_spend (job_id, cost_micros)
SELECT job_id, sum(cost_micros) FROM usage_rollups GROUP BY job_id;

CREATE TABLE job_budgets (
    job_id TEXT PRIMARY KEY,
    limit_micros INTEGER NOT NULL CHECK (limit_micros > 0),
    soft_fraction REAL NOT NULL CHECK (soft_fraction > 0 AND soft_fraction <= 1),
    soft_micros INTEGER NOT NULL CHECK (soft_micros > 0 AND soft_micros <= limit_micros),
    updated_at TEXT NOT NULL
);

CREATE TRIGGER usage_ledger_job_spend AFTER INSERT ON usage_ledger
BEGIN
    INSERT INTO job_spend (job_id, cost_micros)
    VALUES (NEW.job_id, CAST(round(CAST(NEW.cost AS REAL) * 1000000) AS INTEGER))
    ON CONFLICT (job_id) DO UPDATE SET cost_micros = cost_micros + excluded.cost_micros;
END;

CREATE VIEW budget_stops AS
SELECT j.id AS job_id, 'project' AS budget
FROM jobs AS j
JOIN project_budgets AS b ON b.project = j.project
JOIN project_spend AS sp ON sp.project = b.project
WHERE sp.cost_micros >= b.limit_micros
UNION ALL
SELECT b.job_id, 'job'
FROM job_budgets AS b
JOIN job_spend AS sp ON sp.job_id = b.job_id
WHERE sp.cost_micros >= b.limit_micros;
