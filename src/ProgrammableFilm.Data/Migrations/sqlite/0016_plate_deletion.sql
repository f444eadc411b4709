-- Deleting a plate (issue 12): its frames go, its row stays for the manifests that name it.
ALTER TABLE plates ADD COLUMN deleted_at TEXT NULL;
