-- Schema step 2: the server's authority over what tablets write (as SQLite's step 4).
-- Media that entries reference (only those may be uploaded), refused changes held with the
-- device they quarantined, and parents' e-mail addresses, which leave the replicated roster.

CREATE TABLE IF NOT EXISTS media_refs (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (setting_id, sha256, doc)
);

-- Ordered by `at` then `id` (a random UUID): no sequence is needed.
CREATE TABLE IF NOT EXISTS quarantine (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    id UUID NOT NULL,
    device TEXT NOT NULL,
    doc TEXT NOT NULL,
    rule TEXT NOT NULL,
    detail TEXT NOT NULL,
    at BIGINT NOT NULL,
    held BYTEA NOT NULL,
    released_at BIGINT,
    replaced_at BIGINT,
    PRIMARY KEY (setting_id, id)
);
CREATE INDEX IF NOT EXISTS quarantine_by_device ON quarantine (setting_id, device, at);

CREATE TABLE IF NOT EXISTS parent_contacts (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    parent_id TEXT NOT NULL,
    email TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (setting_id, parent_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS parent_contacts_by_email ON parent_contacts (setting_id, email);
