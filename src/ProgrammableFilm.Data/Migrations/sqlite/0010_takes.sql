-- Takes (issue 12): a shot row is one take of a shot; see the PostgreSQL script. SQLite cannot add NOT NULL
-- without a default, so shot_name and lineage_id default to empty and are set at once.
ALTER TABLE shots ADD COLUMN shot_name TEXT NOT NULL DEFAULT '';
ALTER TABLE shots ADD COLUMN lineage_id TEXT NOT NULL DEFAULT '';
ALTER TABLE shots ADD COLUMN take_number INTEGER NOT NULL DEFAULT 1;
ALTER TABLE shots ADD COLUMN variant_json TEXT NULL;
ALTER TABLE shots ADD COLUMN parent_take_id TEXT NULL REFERENCES shots (id);
ALTER TABLE shots ADD COLUMN review TEXT NOT NULL DEFAULT 'Pending';
ALTER TABLE shots ADD COLUMN review_note TEXT NULL;
ALTER TABLE shots ADD COLUMN reviewed_by TEXT NULL;
ALTER TABLE shots ADD COLUMN reviewed_at TEXT NULL;
ALTER TABLE shots ADD COLUMN seam_error REAL NULL;
ALTER TABLE shots ADD COLUMN prompt_adherence REAL NULL;
UPDATE shots SET shot_name = name, lineage_id = id;
CREATE UNIQUE INDEX ux_shots_lineage_take ON shots (lineage_id, take_number);

ALTER TABLE tasks ADD COLUMN copy_to TEXT NULL;
CREATE TABLE task_reuses (
    shot_id TEXT NOT NULL REFERENCES shots (id),
    task_id TEXT NOT NULL REFERENCES tasks (id),
    PRIMARY KEY (shot_id, task_id)
);
CREATE INDEX ix_task_reuses_task ON task_reuses (task_id);

CREATE TABLE shot_versions (
    lineage_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    take_id TEXT NOT NULL REFERENCES shots (id),
    approved_at TEXT NOT NULL,
    approved_by_key_id TEXT NULL,
    approved_by TEXT NOT NULL,
    note TEXT NULL,
    PRIMARY KEY (lineage_id, version)
);
