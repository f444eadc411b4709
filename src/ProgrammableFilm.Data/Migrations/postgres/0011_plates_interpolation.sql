-- Interpolation (issue 12): the frame-rate multiplier a shot's interpolate task applies after assembly.
ALTER TABLE shots ADD COLUMN interpolate integer NOT NULL DEFAULT 1;
