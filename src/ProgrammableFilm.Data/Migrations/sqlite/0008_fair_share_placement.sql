-- Fair share between projects: a weight per project (1 without a row).
CREATE TABLE project_shares (
    project TEXT NOT NULL PRIMARY KEY,
    weight REAL NOT NULL CHECK (weight > 0),
    updated_at TEXT NOT NULL
);

-- Placement: what a worker runs and is labelled with; what a task needs after running out of memory.
ALTER TABLE workers ADD COLUMN engines TEXT NULL;
ALTER TABLE workers ADD COLUMN tags TEXT NULL;
ALTER TABLE tasks ADD COLUMN min_memory_bytes INTEGER NOT NULL DEFAULT 0;

CREATE INDEX ix_tasks_ready_by_job ON tasks (job_id, lane, priority DESC, created_at, first_frame) WHERE state = 'Ready';
