-- Interpolation (issue 12): the frame-rate multiplier a shot's interpolate task applies after assembly.
ALTER TABLE shots ADD COLUMN interpolate integer NOT NULL DEFAULT 1;

-- Camera plates (issue 12): uploaded footage, decoded to frames in storage, with its provenance.
CREATE TABLE plates (
    id uuid PRIMARY KEY,
    project text NOT NULL,
    sha256 text NOT NULL,
    media_type text NOT NULL,
    file_names text NOT NULL,
    bytes bigint NOT NULL,
    frame_count integer NOT NULL,
    width integer NOT NULL,
    height integer NOT NULL,
    uploaded_by text NOT NULL,
    uploaded_by_key_id uuid NULL,
    uploaded_at timestamptz NOT NULL,
    folder text NOT NULL
);
CREATE INDEX ix_plates_project ON plates (project);
ALTER TABLE shots ADD COLUMN plate_id uuid NULL REFERENCES plates (id);
ALTER TABLE shots ADD COLUMN plate_strength double precision NULL;

-- Consistency anchors (issue 12): what the shot inherited from its job, for the consistency check and the manifest.
ALTER TABLE shots ADD COLUMN anchor_background text NULL;
ALTER TABLE shots ADD COLUMN anchor_object text NULL;
ALTER TABLE shots ADD COLUMN anchor_colour text NULL;
