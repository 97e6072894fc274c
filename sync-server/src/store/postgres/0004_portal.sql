-- Schema step 4: the parents' portal (as SQLite's step 6). Portal sessions keyed by the
-- SHA-256 of their id (never the id), and every acceptance of the setting's agreement (the
-- sign-in lockout counts in step 3's attempts table). Rows are ordered by time then a random UUID: no
-- sequences, as CockroachDB and YugabyteDB advise.

CREATE TABLE IF NOT EXISTS portal_sessions (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    id_hash TEXT NOT NULL,
    principal TEXT,
    data BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (setting_id, id_hash)
);
CREATE INDEX IF NOT EXISTS portal_sessions_by_expiry ON portal_sessions (setting_id, expires_at);
CREATE INDEX IF NOT EXISTS portal_sessions_by_principal
    ON portal_sessions (setting_id, principal, expires_at);

CREATE TABLE IF NOT EXISTS agreements (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    id UUID NOT NULL,
    principal TEXT NOT NULL,
    version TEXT NOT NULL,
    at BIGINT NOT NULL,
    session_hash TEXT NOT NULL,
    PRIMARY KEY (setting_id, id)
);
CREATE INDEX IF NOT EXISTS agreements_by_principal ON agreements (setting_id, principal, at);
