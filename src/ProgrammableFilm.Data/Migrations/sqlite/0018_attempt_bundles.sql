-- Bundles (issue 14): short tasks travel several to a message; a pool's queue is counted in messages.
ALTER TABLE attempts ADD COLUMN bundle_size INTEGER NOT NULL DEFAULT 1;
