-- Leases, retries, job control, job dependencies, per-job worker blocklists, attempt logs, sweep bookkeeping.
ALTER TABLE jobs ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN retries INTEGER NOT NULL DEFAULT 3;

ALTER TABLE shots ADD COLUMN frames_deleted_at TEXT NULL;

ALTER TABLE tasks ADD COLUMN not_before TEXT NULL;
ALTER TABLE tasks ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN max_frame_batch INTEGER NULL;
CREATE INDEX ix_tasks_job ON tasks (job_id, state);

ALTER TABLE attempts ADD COLUMN lease_expires_at TEXT NULL;
ALTER TABLE attempts ADD COLUMN last_heartbeat_at TEXT NULL;
ALTER TABLE attempts ADD COLUMN device_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN failure_class TEXT NULL;
CREATE INDEX ix_attempts_live ON attempts (state, lease_expires_at) WHERE state IN ('Queued', 'Claimed');
CREATE INDEX ix_attempts_task ON attempts (task_id);

ALTER TABLE workers ADD COLUMN slots INTEGER NOT NULL DEFAULT 1;
ALTER TABLE workers ADD COLUMN diffusion_engine TEXT NULL;
ALTER TABLE workers ADD COLUMN device_name TEXT NULL;
ALTER TABLE workers ADD COLUMN device_memory_bytes INTEGER NOT NULL DEFAULT 0;

CREATE TABLE job_dependencies (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    depends_on_job_id TEXT NOT NULL REFERENCES jobs (id),
    PRIMARY KEY (job_id, depends_on_job_id)
);
CREATE INDEX ix_job_dependencies_depends_on ON job_dependencies (depends_on_job_id);

CREATE TABLE job_worker_failures (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    worker_id TEXT NOT NULL,
    failures INTEGER NOT NULL,
    blocked_at TEXT NULL,
    PRIMARY KEY (job_id, worker_id)
);

CREATE TABLE attempt_log_lines (
    attempt_id TEXT NOT NULL REFERENCES attempts (id),
    seq INTEGER NOT NULL,
    logged_at TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (attempt_id, seq)
);

CREATE TABLE maintenance_runs (
    name TEXT PRIMARY KEY,
    last_run_at TEXT NOT NULL
);
