-- Interpolation (issue 12): see the PostgreSQL script.
ALTER TABLE shots ADD COLUMN interpolate INTEGER NOT NULL DEFAULT 1;
