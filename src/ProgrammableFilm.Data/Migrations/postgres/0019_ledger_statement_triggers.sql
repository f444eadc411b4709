-- Bills arrive a batch per transaction, in one INSERT (UsageLedger.AppendAsync): the roll-ups and the project's spend
-- are summed once per statement instead of upserted once per row (the same row, over and over in one transaction,
-- was most of PostgreSQL's work per task at a few hundred tasks a second). Keys are taken in one order everywhere so
-- that two concurrent batches wait for each other instead of deadlocking.
DROP TRIGGER usage_ledger_roll_up ON usage_ledger;
DROP TRIGGER usage_ledger_project_spend ON usage_ledger;

CREATE OR REPLACE FUNCTION usage_ledger_roll_up() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_rollups AS r (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated, attempts, cost_micros, device_seconds, energy_joules, co2e_grams)
    SELECT job_id, shot_id, device_sku, dollars_per_hour, energy_estimated, count(*), sum((cost * 1000000)::bigint), sum(device_seconds), sum(energy_joules), sum(coalesce(co2e_grams, 0))
    FROM billed
    GROUP BY job_id, shot_id, device_sku, dollars_per_hour, energy_estimated
    ORDER BY job_id, shot_id, device_sku, dollars_per_hour, energy_estimated
    ON CONFLICT (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated) DO UPDATE
    SET attempts = r.attempts + excluded.attempts,
        cost_micros = r.cost_micros + excluded.cost_micros,
        device_seconds = r.device_seconds + excluded.device_seconds,
        energy_joules = r.energy_joules + excluded.energy_joules,
        co2e_grams = r.co2e_grams + excluded.co2e_grams;
    RETURN NULL;
END;
$$;
CREATE TRIGGER usage_ledger_roll_up AFTER INSERT ON usage_ledger
    REFERENCING NEW TABLE AS billed
    FOR EACH STATEMENT EXECUTE FUNCTION usage_ledger_roll_up();

-- A threshold is crossed when the statement takes the project's spend from below it to at or above it; the spend row
-- stays locked until commit, so concurrent bills see each other's sums and each crossing is one row.
CREATE OR REPLACE FUNCTION usage_ledger_project_spend() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH added AS (
        SELECT project, count(*) AS attempts, sum((cost * 1000000)::bigint) AS micros, sum(device_seconds) AS device_seconds,
               sum(energy_joules) AS energy_joules, sum(coalesce(co2e_grams, 0)) AS co2e_grams, max(recorded_at) AS recorded_at
        FROM billed GROUP BY project
    ), spent AS (
        INSERT INTO project_spend AS s (project, attempts, cost_micros, device_seconds, energy_joules, co2e_grams)
        SELECT project, attempts, micros, device_seconds, energy_joules, co2e_grams FROM added ORDER BY project
        ON CONFLICT (project) DO UPDATE
        SET attempts = s.attempts + excluded.attempts,
            cost_micros = s.cost_micros + excluded.cost_micros,
            device_seconds = s.device_seconds + excluded.device_seconds,
            energy_joules = s.energy_joules + excluded.energy_joules,
            co2e_grams = s.co2e_grams + excluded.co2e_grams
        RETURNING s.project, s.cost_micros
    )
    INSERT INTO budget_alerts (project, level, crossed_at, spent_micros, limit_micros)
    SELECT a.project, l.level, a.recorded_at, sp.cost_micros, b.limit_micros
    FROM added AS a
    JOIN spent AS sp ON sp.project = a.project
    JOIN project_budgets AS b ON b.project = a.project
    CROSS JOIN LATERAL (VALUES (1, 'soft', b.soft_micros), (2, 'hard', b.limit_micros)) AS l(ord, level, threshold)
    WHERE sp.cost_micros >= l.threshold AND sp.cost_micros - a.micros < l.threshold
    ORDER BY a.project, l.ord;
    RETURN NULL;
END;
$$;
CREATE TRIGGER usage_ledger_project_spend AFTER INSERT ON usage_ledger
    REFERENCING NEW TABLE AS billed
    FOR EACH STATEMENT EXECUTE FUNCTION usage_ledger_project_spend();

DROP TRIGGER usage_ledger_job_spend ON usage_ledger;
CREATE OR REPLACE FUNCTION usage_ledger_job_spend() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_spend AS s (job_id, cost_micros)
    SELECT job_id, sum((cost * 1000000)::bigint) FROM billed GROUP BY job_id ORDER BY job_id
    ON CONFLICT (job_id) DO UPDATE SET cost_micros = s.cost_micros + excluded.cost_micros;
    RETURN NULL;
END;
$$;
CREATE TRIGGER usage_ledger_job_spend AFTER INSERT ON usage_ledger
    REFERENCING NEW TABLE AS billed
    FOR EACH STATEMENT EXECUTE FUNCTION usage_ledger_job_spend();
