-- Interpolation (issue 12): see the PostgreSQL script.
ALTER TABLE shots ADD COLUMN interpolate INTEGER NOT NULL DEFAULT 1;

CREATE TABLE plates (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    media_type TEXT NOT NULL,
    file_names TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    frame_count INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_by_key_id TEXT NULL,
    uploaded_at TEXT NOT NULL,
    folder TEXT NOT NULL
);
CREATE INDEX ix_plates_project ON plates (project);
ALTER TABLE shots ADD COLUMN plate_id TEXT NULL REFERENCES plates (id);
ALTER TABLE shots ADD COLUMN plate_strength REAL NULL;

-- Consistency anchors (issue 12): what the shot inherited from its job, for the consistency check and the manifest.
ALTER TABLE shots ADD COLUMN anchor_background TEXT NULL;
ALTER TABLE shots ADD COLUMN anchor_object TEXT NULL;
ALTER TABLE shots ADD COLUMN anchor_colour TEXT NULL;
