-- The ledger summed per project and UTC minute, so that the dashboard's burn rate (the last hour) and spend series
-- read at most a row per project and minute instead of every ledger row of the range: at a thousand tasks a second an
-- hour is 3.6 million rows, and the projects summary read the last hour of every project per request. Kept by the
-- project-spend statement trigger in the bill's own transaction, so it is exact and never stale, like project_spend.
CREATE TABLE project_spend_minutes (
    project text NOT NULL,
    minute timestamptz NOT NULL,
    attempts bigint NOT NULL,
    cost_micros bigint NOT NULL,
    device_seconds double precision NOT NULL,
    energy_joules double precision NOT NULL,
    co2e_grams double precision NOT NULL,
    PRIMARY KEY (project, minute)
);

-- date_bin on the epoch rather than date_trunc: date_trunc of a timestamptz follows the session's time zone.
INSERT INTO project_spend_minutes (project, minute, attempts, cost_micros, device_seconds, energy_joules, co2e_grams)
SELECT project, date_bin('1 minute', recorded_at, TIMESTAMPTZ '1970-01-01 00:00:00+00'), count(*), sum((cost * 1000000)::bigint),
       sum(device_seconds), sum(energy_joules), sum(coalesce(co2e_grams, 0))
FROM usage_ledger
GROUP BY 1, 2;

-- A bill's minute rows are upserted after its project_spend rows, in (project, minute) order. Every transaction that
-- touches a project's minute rows already holds that project's spend row (taken in project order, and kept until
-- commit), so concurrent bills of a project queue on the spend row and never meet on the minutes: no new lock order,
-- no new deadlock. A separate statement rather than one more CTE: the sub-statements of one WITH run in no
-- guaranteed order.
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

    INSERT INTO project_spend_minutes AS m (project, minute, attempts, cost_micros, device_seconds, energy_joules, co2e_grams)
    SELECT project, date_bin('1 minute', recorded_at, TIMESTAMPTZ '1970-01-01 00:00:00+00'), count(*), sum((cost * 1000000)::bigint),
           sum(device_seconds), sum(energy_joules), sum(coalesce(co2e_grams, 0))
    FROM billed
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (project, minute) DO UPDATE
    SET attempts = m.attempts + excluded.attempts,
        cost_micros = m.cost_micros + excluded.cost_micros,
        device_seconds = m.device_seconds + excluded.device_seconds,
        energy_joules = m.energy_joules + excluded.energy_joules,
        co2e_grams = m.co2e_grams + excluded.co2e_grams;
    RETURN NULL;
END;
$$;
