-- Leases, retries, job control, job dependencies, per-job worker blocklists, attempt logs, sweep bookkeeping.
ALTER TABLE jobs ADD COLUMN paused boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN retries integer NOT NULL DEFAULT 3;

ALTER TABLE shots ADD COLUMN frames_deleted_at timestamptz NULL;

ALTER TABLE tasks ADD COLUMN not_before timestamptz NULL;
ALTER TABLE tasks ADD COLUMN failures integer NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN max_frame_batch integer NULL;
CREATE INDEX ix_tasks_job ON tasks (job_id, state);

ALTER TABLE attempts ADD COLUMN lease_expires_at timestamptz NULL;
ALTER TABLE attempts ADD COLUMN last_heartbeat_at timestamptz NULL;
ALTER TABLE attempts ADD COLUMN device_seconds double precision NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN failure_class text NULL;
CREATE INDEX ix_attempts_live ON attempts (state, lease_expires_at) WHERE state IN ('Queued', 'Claimed');
CREATE INDEX ix_attempts_task ON attempts (task_id);

ALTER TABLE workers ADD COLUMN slots integer NOT NULL DEFAULT 1;
ALTER TABLE workers ADD COLUMN diffusion_engine text NULL;
ALTER TABLE workers ADD COLUMN device_name text NULL;
ALTER TABLE workers ADD COLUMN device_memory_bytes bigint NOT NULL DEFAULT 0;

CREATE TABLE job_dependencies (
    job_id uuid NOT NULL REFERENCES jobs (id),
    depends_on_job_id uuid NOT NULL REFERENCES jobs (id),
    PRIMARY KEY (job_id, depends_on_job_id)
);
CREATE INDEX ix_job_dependencies_depends_on ON job_dependencies (depends_on_job_id);

CREATE TABLE job_worker_failures (
    job_id uuid NOT NULL REFERENCES jobs (id),
    worker_id text NOT NULL,
    failures integer NOT NULL,
    blocked_at timestamptz NULL,
    PRIMARY KEY (job_id, worker_id)
);

CREATE TABLE attempt_log_lines (
    attempt_id uuid NOT NULL REFERENCES attempts (id),
    seq integer NOT NULL,
    logged_at timestamptz NOT NULL,
    level text NOT NULL,
    message text NOT NULL,
    PRIMARY KEY (attempt_id, seq)
);

CREATE TABLE maintenance_runs (
    name text PRIMARY KEY,
    last_run_at timestamptz NOT NULL
);
