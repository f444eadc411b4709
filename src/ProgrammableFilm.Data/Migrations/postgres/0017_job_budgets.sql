-- Per-job budgets (issue 13, item 3): a job's own hard limit stops its dispatch the way its project's does.

-- What each job has spent, kept by a trigger in the ledger row's own transaction, like project_spend: the budget
-- predicate reads one row instead of summing the ledger.
CREATE TABLE job_spend (
    job_id uuid PRIMARY KEY,
    cost_micros bigint NOT NULL
);
INSERT INTO job_spend (job_id, cost_micros)
SELECT job_id, sum(cost_micros) FROM usage_rollups GROUP BY job_id;

CREATE TABLE job_budgets (
    job_id uuid PRIMARY KEY,
    limit_micros bigint NOT NULL CHECK (limit_micros > 0),
    soft_fraction double precision NOT NULL CHECK (soft_fraction > 0 AND soft_fraction <= 1),
    soft_micros bigint NOT NULL CHECK (soft_micros > 0 AND soft_micros <= limit_micros),
    updated_at timestamptz NOT NULL
);

CREATE FUNCTION usage_ledger_job_spend() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_spend AS s (job_id, cost_micros)
    VALUES (NEW.job_id, (NEW.cost * 1000000)::bigint)
    ON CONFLICT (job_id) DO UPDATE SET cost_micros = s.cost_micros + excluded.cost_micros;
    RETURN NULL;
END;
$$;
CREATE TRIGGER usage_ledger_job_spend AFTER INSERT ON usage_ledger
    FOR EACH ROW EXECUTE FUNCTION usage_ledger_job_spend();

-- The one definition of "this job gets no new attempts for money": its project's hard limit or its own is reached
-- (budget = 'project' or 'job'). The dispatcher's candidate query, the claim check and the job status all read it;
-- asked about one job, PostgreSQL folds it into primary-key probes of the budget and spend rows.
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
