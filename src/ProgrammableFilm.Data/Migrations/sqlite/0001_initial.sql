CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    name TEXT NULL,
    lane TEXT NOT NULL,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT NULL,
    error TEXT NULL
);
CREATE INDEX ix_jobs_project ON jobs (project, created_at);

CREATE TABLE shots (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs (id),
    ordinal INTEGER NOT NULL,
    name TEXT NOT NULL,
    prompt TEXT NOT NULL,
    duration_seconds REAL NOT NULL,
    fps INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    guidance REAL NOT NULL,
    seed INTEGER NOT NULL,
    engine TEXT NOT NULL,
    keyframe_interval INTEGER NOT NULL,
    frame_count INTEGER NOT NULL,
    state TEXT NOT NULL,
    folder TEXT NOT NULL,
    video_path TEXT NULL,
    manifest_path TEXT NULL,
    flicker REAL NULL,
    error TEXT NULL,
    finished_at TEXT NULL,
    UNIQUE (job_id, name)
);

CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    shot_id TEXT NOT NULL REFERENCES shots (id),
    job_id TEXT NOT NULL REFERENCES jobs (id),
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    first_frame INTEGER NOT NULL,
    last_frame INTEGER NOT NULL,
    start_keyframe INTEGER NULL,
    end_keyframe INTEGER NULL,
    state TEXT NOT NULL,
    pending_dependencies INTEGER NOT NULL,
    current_attempt_id TEXT NULL,
    attempt_count INTEGER NOT NULL,
    lane INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    progress REAL NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    ready_at TEXT NULL,
    error TEXT NULL,
    UNIQUE (shot_id, key)
);
CREATE INDEX ix_tasks_dispatch ON tasks (state, lane, priority DESC, created_at);
CREATE INDEX ix_tasks_shot ON tasks (shot_id);

CREATE TABLE task_dependencies (
    task_id TEXT NOT NULL REFERENCES tasks (id),
    depends_on_task_id TEXT NOT NULL REFERENCES tasks (id),
    PRIMARY KEY (task_id, depends_on_task_id)
);
CREATE INDEX ix_task_dependencies_depends_on ON task_dependencies (depends_on_task_id);

CREATE TABLE attempts (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks (id),
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    pool TEXT NOT NULL,
    worker_id TEXT NULL,
    created_at TEXT NOT NULL,
    published_at TEXT NULL,
    claimed_at TEXT NULL,
    reported_at TEXT NULL,
    finished_at TEXT NULL,
    error TEXT NULL,
    result_json TEXT NULL,
    UNIQUE (task_id, number)
);

CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    pool TEXT NOT NULL,
    device_sku TEXT NOT NULL,
    device_count INTEGER NOT NULL,
    hostname TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL
);

CREATE TABLE usage_ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    attempt_id TEXT NOT NULL UNIQUE REFERENCES attempts (id),
    task_id TEXT NOT NULL REFERENCES tasks (id),
    shot_id TEXT NOT NULL REFERENCES shots (id),
    job_id TEXT NOT NULL REFERENCES jobs (id),
    project TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    device_sku TEXT NOT NULL,
    device_count INTEGER NOT NULL,
    device_seconds REAL NOT NULL,
    energy_joules REAL NOT NULL,
    energy_estimated INTEGER NOT NULL,
    dollars_per_hour TEXT NOT NULL,
    cost TEXT NOT NULL,
    outcome TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX ix_usage_ledger_job ON usage_ledger (job_id);
CREATE INDEX ix_usage_ledger_project_time ON usage_ledger (project, recorded_at);

-- The ledger is append-only: corrections are new rows, never edits.
CREATE TRIGGER usage_ledger_no_update BEFORE UPDATE ON usage_ledger
BEGIN
    SELECT RAISE(ABORT, 'usage_ledger is append-only');
END;
CREATE TRIGGER usage_ledger_no_delete BEFORE DELETE ON usage_ledger
BEGIN
    SELECT RAISE(ABORT, 'usage_ledger is append-only');
END;
