-- Consistency anchors (issue 12, item 4): see the PostgreSQL script.
ALTER TABLE shots ADD COLUMN anchor_palette_drift REAL NULL;
ALTER TABLE shots ADD COLUMN anchor_colour_drift REAL NULL;
