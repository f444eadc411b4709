-- Reads that stay fast at a million tasks and ten million ledger rows (issue 14).

-- Task counts known at planning: the spec's task limit, a status that needs no count of the plan.
ALTER TABLE jobs ADD COLUMN task_count integer NOT NULL DEFAULT 0;
ALTER TABLE shots ADD COLUMN task_count integer NOT NULL DEFAULT 0;
UPDATE shots SET task_count = (SELECT count(*) FROM tasks WHERE tasks.shot_id = shots.id);
UPDATE jobs SET task_count = (SELECT count(*) FROM tasks WHERE tasks.job_id = jobs.id);

-- A big job is planned in the background, shot by shot, each shot in its own transaction: planned_at says which
-- shots are written, so that planning resumes where it stopped after a restart.
ALTER TABLE shots ADD COLUMN planned_at timestamptz NULL;
UPDATE shots SET planned_at = now();

-- Logs are paged by task id within a job. UNIQUE (shot_id, key) already serves every lookup by shot, so the
-- shot index it makes redundant goes: planning writes no more indexes than before.
DROP INDEX ix_tasks_shot;
CREATE INDEX ix_tasks_job_order ON tasks (job_id, id);

-- A big job's tasks counted per shot and state, at most StatusRollupMaxAge old: counting a 300,000-task job on
-- every status poll would cost a core per few clients. counted_at is also the lock that lets one reader recount.
CREATE TABLE task_count_rollups (
    job_id uuid PRIMARY KEY REFERENCES jobs (id),
    counted_at timestamptz NOT NULL
);
CREATE TABLE shot_task_counts (
    job_id uuid NOT NULL REFERENCES jobs (id),
    shot_id uuid NOT NULL REFERENCES shots (id),
    state text NOT NULL,
    tasks integer NOT NULL,
    weight bigint NOT NULL,
    weighted_progress double precision NOT NULL,
    PRIMARY KEY (job_id, shot_id, state)
);

-- The ledger summed per job, shot and price, in the transaction that appends the row (so exact, never stale):
-- job cost and status read a few rows instead of summing millions. Cost in micro-dollars: the ledger's
-- numeric(18, 6) exactly, and summable by SQLite too.
CREATE TABLE usage_rollups (
    job_id uuid NOT NULL REFERENCES jobs (id),
    shot_id uuid NOT NULL REFERENCES shots (id),
    device_sku text NOT NULL,
    dollars_per_hour numeric(18, 6) NOT NULL,
    energy_estimated boolean NOT NULL,
    attempts integer NOT NULL,
    cost_micros bigint NOT NULL,
    device_seconds double precision NOT NULL,
    energy_joules double precision NOT NULL,
    PRIMARY KEY (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated)
);
INSERT INTO usage_rollups (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated, attempts, cost_micros, device_seconds, energy_joules)
SELECT job_id, shot_id, device_sku, dollars_per_hour, energy_estimated, count(*), sum((cost * 1000000)::bigint), sum(device_seconds), sum(energy_joules)
FROM usage_ledger GROUP BY job_id, shot_id, device_sku, dollars_per_hour, energy_estimated;

CREATE FUNCTION usage_ledger_roll_up() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_rollups AS r (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated, attempts, cost_micros, device_seconds, energy_joules)
    VALUES (NEW.job_id, NEW.shot_id, NEW.device_sku, NEW.dollars_per_hour, NEW.energy_estimated, 1, (NEW.cost * 1000000)::bigint, NEW.device_seconds, NEW.energy_joules)
    ON CONFLICT (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated) DO UPDATE
    SET attempts = r.attempts + 1,
        cost_micros = r.cost_micros + excluded.cost_micros,
        device_seconds = r.device_seconds + excluded.device_seconds,
        energy_joules = r.energy_joules + excluded.energy_joules;
    RETURN NULL;
END;
$$;
CREATE TRIGGER usage_ledger_roll_up AFTER INSERT ON usage_ledger
    FOR EACH ROW EXECUTE FUNCTION usage_ledger_roll_up();
