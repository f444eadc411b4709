-- A job's own thresholds alert like its project's; see the PostgreSQL migration. One ledger row at a time here, as in
-- the project's trigger (0013).
ALTER TABLE budget_alerts ADD COLUMN job_id TEXT NULL;
CREATE INDEX ix_budget_alerts_job ON budget_alerts (job_id, id) WHERE job_id IS NOT NULL;

DROP TRIGGER usage_ledger_job_spend;
CREATE TRIGGER usage_ledger_job_spend AFTER INSERT ON usage_ledger
BEGIN
    INSERT INTO job_spend (job_id, cost_micros)
    VALUES (NEW.job_id, CAST(round(CAST(NEW.cost AS REAL) * 1000000) AS INTEGER))
    ON CONFLICT (job_id) DO UPDATE SET cost_micros = cost_micros + excluded.cost_micros;
    INSERT INTO budget_alerts (project, job_id, level, crossed_at, spent_micros, limit_micros)
    SELECT NEW.project, NEW.job_id, l.level, NEW.recorded_at, s.cost_micros, b.limit_micros
    FROM job_budgets AS b
    JOIN job_spend AS s ON s.job_id = b.job_id
    JOIN (SELECT 1 AS ord, 'soft' AS level UNION ALL SELECT 2, 'hard') AS l
    WHERE b.job_id = NEW.job_id
      AND s.cost_micros >= CASE l.level WHEN 'soft' THEN b.soft_micros ELSE b.limit_micros END
      AND s.cost_micros - CAST(round(CAST(NEW.cost AS REAL) * 1000000) AS INTEGER) < CASE l.level WHEN 'soft' THEN b.soft_micros ELSE b.limit_micros END
    ORDER BY l.ord;
END;
