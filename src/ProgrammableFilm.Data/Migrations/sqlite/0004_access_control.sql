-- API keys: only a SHA-256 hash of each key is kept (the key itself is shown once, at creation). A key is 32 random
-- bytes, so a fast hash is enough: there is nothing to guess a key from, unlike a password, and a lookup by hash
-- stays one index probe per request. The prefix (not secret) names a key in lists and logs.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    project TEXT NULL,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NULL,
    expires_at TEXT NULL,
    revoked_at TEXT NULL,
    CHECK ((role = 'Admin') = (project IS NULL))
);
CREATE INDEX ix_api_keys_project ON api_keys (project, created_at);

-- Who did what and when. Append-only: the triggers refuse every UPDATE and DELETE, whoever asks.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    key_id TEXT NULL,
    key_prefix TEXT NULL,
    project TEXT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX ix_audit_log_project ON audit_log (project, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
