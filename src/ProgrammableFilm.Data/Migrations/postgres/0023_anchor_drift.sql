-- Consistency anchors (issue 12, item 4): each take's measured drift from its job's anchors, kept with its other
-- signals so that the job's status and the takes list report it beside flicker (it was only in the manifests).
ALTER TABLE shots ADD COLUMN anchor_palette_drift double precision NULL;
ALTER TABLE shots ADD COLUMN anchor_colour_drift double precision NULL;
