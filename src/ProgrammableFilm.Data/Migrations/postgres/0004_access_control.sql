-- API keys: only a SHA-256 hash of each key is kept (the key itself is shown once, at creation). A key is 32 random
-- bytes, so a fast hash is enough: there is nothing to guess a key from, unlike a password, and a lookup by hash
-- stays one index probe per request. The prefix (not secret) names a key in lists and logs.
CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    prefix text NOT NULL,
    hash text NOT NULL UNIQUE,
    project text NULL,
    role text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    created_by uuid NULL,
    expires_at timestamp with time zone NULL,
    revoked_at timestamp with time zone NULL,
    CHECK ((role = 'Admin') = (project IS NULL))
);
CREATE INDEX ix_api_keys_project ON api_keys (project, created_at);

-- Who did what and when. Append-only: the trigger refuses every UPDATE and DELETE, whoever asks.
CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamp with time zone NOT NULL,
    key_id uuid NULL,
    key_prefix text NULL,
    project text NULL,
    action text NOT NULL,
    target text NOT NULL,
    outcome text NOT NULL
);
CREATE INDEX ix_audit_log_project ON audit_log (project, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
