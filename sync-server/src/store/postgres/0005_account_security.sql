-- Schema step 5: the parent's account security (as SQLite's step 7). TOTP second factors (the
-- secret, whether it is on, the newest time step a code was accepted for, so no code is
-- accepted twice) and invitations to set a password, keyed by the SHA-256 of their token
-- (never the token).

CREATE TABLE IF NOT EXISTS totp (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    principal TEXT NOT NULL,
    secret BYTEA NOT NULL,
    enabled BOOLEAN NOT NULL,
    last_step BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (setting_id, principal)
);

CREATE TABLE IF NOT EXISTS invitations (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (setting_id, token_hash)
);
CREATE INDEX IF NOT EXISTS invitations_by_parent ON invitations (setting_id, parent_id);
