-- Schema step 6: managers' console sign-in (as SQLite's step 8). Staff members' sign-in
-- addresses (server only, like parents'; an address is one login's across both tables, which
-- the store checks under a lock of the setting's row) and one-time recovery codes, kept as
-- hashes.

CREATE TABLE IF NOT EXISTS staff_contacts (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    staff_id TEXT NOT NULL,
    email TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (setting_id, staff_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS staff_contacts_by_email ON staff_contacts (setting_id, email);

CREATE TABLE IF NOT EXISTS recovery_codes (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    principal TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (setting_id, principal, code_hash)
);
