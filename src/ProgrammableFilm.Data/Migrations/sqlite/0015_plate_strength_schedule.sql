-- A plate's strength per keyframe (issue 12): comma-separated, in keyframe order, the last one repeated; NULL when
-- the shot gives one strength for every keyframe (plate_strength).
ALTER TABLE shots ADD COLUMN plate_strengths text NULL;
