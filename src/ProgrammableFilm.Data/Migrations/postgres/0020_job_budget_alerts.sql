-- A job's own thresholds alert like its project's: a crossing of a job's budget is a budget_alerts row naming the job
-- (job_id NULL: the project's own budget), relayed to the same sinks, so budget.soft and budget.hard reach the
-- producer whoever's budget it was.
ALTER TABLE budget_alerts ADD COLUMN job_id uuid NULL;
CREATE INDEX ix_budget_alerts_job ON budget_alerts (job_id, id) WHERE job_id IS NOT NULL;

-- As for projects (0019): a threshold is crossed when the statement takes the job's spend from below it to at or above
-- it. The job's spend row stays locked until commit, so concurrent bills see each other's sums and each crossing is
-- one row; a budget raised above the spend makes the next crossing a new one.
CREATE OR REPLACE FUNCTION usage_ledger_job_spend() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH added AS (
        SELECT job_id, min(project) AS project, sum((cost * 1000000)::bigint) AS micros, max(recorded_at) AS recorded_at
        FROM billed GROUP BY job_id
    ), spent AS (
        INSERT INTO job_spend AS s (job_id, cost_micros)
        SELECT job_id, micros FROM added ORDER BY job_id
        ON CONFLICT (job_id) DO UPDATE SET cost_micros = s.cost_micros + excluded.cost_micros
        RETURNING s.job_id, s.cost_micros
    )
    INSERT INTO budget_alerts (project, job_id, level, crossed_at, spent_micros, limit_micros)
    SELECT a.project, a.job_id, l.level, a.recorded_at, sp.cost_micros, b.limit_micros
    FROM added AS a
    JOIN spent AS sp ON sp.job_id = a.job_id
    JOIN job_budgets AS b ON b.job_id = a.job_id
    CROSS JOIN LATERAL (VALUES (1, 'soft', b.soft_micros), (2, 'hard', b.limit_micros)) AS l(ord, level, threshold)
    WHERE sp.cost_micros >= l.threshold AND sp.cost_micros - a.micros < l.threshold
    ORDER BY a.job_id, l.ord;
    RETURN NULL;
END;
$$;
