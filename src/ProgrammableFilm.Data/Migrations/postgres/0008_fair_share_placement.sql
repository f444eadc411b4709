-- Fair share between projects: a weight per project (1 without a row).
CREATE TABLE project_shares (
    project text PRIMARY KEY,
    weight double precision NOT NULL CHECK (weight > 0),
    updated_at timestamptz NOT NULL
);

-- Placement: what a worker runs and is labelled with; what a task needs after running out of memory.
ALTER TABLE workers ADD COLUMN engines text NULL;
ALTER TABLE workers ADD COLUMN tags text NULL;
ALTER TABLE tasks ADD COLUMN min_memory_bytes bigint NOT NULL DEFAULT 0;

-- The dispatcher takes each runnable job's next Ready tasks in dispatch order; with a million-task backlog in one job
-- this index answers a new preview job's first task without reading the backlog.
CREATE INDEX ix_tasks_ready_by_job ON tasks (job_id, lane, priority DESC, created_at, first_frame) WHERE state = 'Ready';
