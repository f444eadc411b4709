-- Takes (issue 12): a shot row is one take of a shot; the takes of one shot, across jobs, share a lineage.
ALTER TABLE shots ADD COLUMN shot_name text NULL;
ALTER TABLE shots ADD COLUMN lineage_id uuid NULL;
ALTER TABLE shots ADD COLUMN take_number integer NOT NULL DEFAULT 1;
ALTER TABLE shots ADD COLUMN variant_json text NULL;
ALTER TABLE shots ADD COLUMN parent_take_id uuid NULL REFERENCES shots (id);
ALTER TABLE shots ADD COLUMN review text NOT NULL DEFAULT 'Pending';
ALTER TABLE shots ADD COLUMN review_note text NULL;
ALTER TABLE shots ADD COLUMN reviewed_by text NULL;
ALTER TABLE shots ADD COLUMN reviewed_at timestamptz NULL;
ALTER TABLE shots ADD COLUMN seam_error double precision NULL;
ALTER TABLE shots ADD COLUMN prompt_adherence double precision NULL;
UPDATE shots SET shot_name = name, lineage_id = id;
ALTER TABLE shots ALTER COLUMN shot_name SET NOT NULL;
ALTER TABLE shots ALTER COLUMN lineage_id SET NOT NULL;
-- Take numbers are unique per lineage: two iterations racing for the next number cannot both win it.
CREATE UNIQUE INDEX ux_shots_lineage_take ON shots (lineage_id, take_number);

-- A reused task writes its frames into the folders of the takes that reuse it.
ALTER TABLE tasks ADD COLUMN copy_to text NULL;
CREATE TABLE task_reuses (
    shot_id uuid NOT NULL REFERENCES shots (id),
    task_id uuid NOT NULL REFERENCES tasks (id),
    PRIMARY KEY (shot_id, task_id)
);
CREATE INDEX ix_task_reuses_task ON task_reuses (task_id);

-- Approvals: a shot's numbered versions, kept.
CREATE TABLE shot_versions (
    lineage_id uuid NOT NULL,
    version integer NOT NULL,
    take_id uuid NOT NULL REFERENCES shots (id),
    approved_at timestamptz NOT NULL,
    approved_by_key_id uuid NULL,
    approved_by text NOT NULL,
    note text NULL,
    PRIMARY KEY (lineage_id, version)
);
