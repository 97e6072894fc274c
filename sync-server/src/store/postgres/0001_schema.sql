-- Schema step 1: settings (tenants) and every per-setting table.
--
-- Every per-setting table leads its primary key with setting_id, and every unique constraint
-- and index includes it, so a setting's rows are found, locked and partitioned together and no
-- key of one setting can collide with another's. No sequences, SERIAL or IDENTITY columns:
-- orders are counters kept inside the transaction (docs.next_seq for a document's chunks,
-- setting_counters.audit_seq for the audit log), which CockroachDB and YugabyteDB accept as
-- they are. Times are ms since the Unix epoch (BIGINT), as in the SQLite schema.
--
-- IF NOT EXISTS everywhere: on engines whose DDL is not transactional a step cut short can be
-- run again.

CREATE TABLE IF NOT EXISTS settings (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    hostname TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- `sha256:<hex>` of the setting CA's DER: finds the tenant from a device certificate's
    -- issuer. The PEMs are what a hosted deployment keeps here instead of the data
    -- directory's ca.* and server.* files.
    ca_fingerprint TEXT,
    ca_cert_pem TEXT,
    ca_key_pem TEXT,
    server_cert_pem TEXT,
    server_key_pem TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS settings_by_hostname ON settings (hostname);
CREATE UNIQUE INDEX IF NOT EXISTS settings_by_ca_fingerprint ON settings (ca_fingerprint);

-- Counters a setting's writers take in turn (a row lock held to the end of the transaction).
-- Kept out of `settings` so that counting never contends with reading a tenant.
CREATE TABLE IF NOT EXISTS setting_counters (
    setting_id UUID PRIMARY KEY REFERENCES settings (id) ON DELETE CASCADE,
    audit_seq BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS meta (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (setting_id, key)
);

CREATE TABLE IF NOT EXISTS docs (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    doc TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    snapshot BYTEA NOT NULL,
    version BIGINT NOT NULL DEFAULT 0,
    heads BYTEA,
    -- The sequence number the next appended chunk gets; bumped by the UPDATE that also locks
    -- the row, so appenders to one document take numbers in turn.
    next_seq BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (setting_id, doc)
);

CREATE TABLE IF NOT EXISTS doc_chunks (
    setting_id UUID NOT NULL,
    doc TEXT NOT NULL,
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (setting_id, doc, seq),
    FOREIGN KEY (setting_id, doc) REFERENCES docs (setting_id, doc) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS sync_states (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    device TEXT NOT NULL,
    doc TEXT NOT NULL,
    state BYTEA NOT NULL,
    PRIMARY KEY (setting_id, device, doc)
);

CREATE TABLE IF NOT EXISTS devices (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    cert_serial TEXT NOT NULL,
    cert_fingerprint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT,
    last_sync BIGINT,
    app_version TEXT,
    unsynced_media BIGINT NOT NULL DEFAULT 0,
    unsynced_docs BIGINT NOT NULL DEFAULT 0,
    locked BOOLEAN NOT NULL DEFAULT FALSE,
    wipe_requested_at BIGINT,
    wipe_delivered_at BIGINT,
    wiped_at BIGINT,
    PRIMARY KEY (setting_id, id),
    UNIQUE (setting_id, cert_fingerprint)
);

CREATE TABLE IF NOT EXISTS enrol_codes (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    device_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    used_by TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (setting_id, code_hash)
);

CREATE TABLE IF NOT EXISTS media (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    kind TEXT NOT NULL,
    device TEXT NOT NULL,
    stored_at BIGINT NOT NULL,
    PRIMARY KEY (setting_id, sha256)
);

CREATE TABLE IF NOT EXISTS passwords (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    principal TEXT NOT NULL,
    phc TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (setting_id, principal)
);

CREATE TABLE IF NOT EXISTS audit (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    -- From setting_counters.audit_seq, in the inserting transaction: the order of the log.
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    device TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (setting_id, seq)
);

CREATE TABLE IF NOT EXISTS pin_failures (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    device TEXT NOT NULL,
    staff_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    reported_at BIGINT NOT NULL,
    PRIMARY KEY (setting_id, device, staff_id, at)
);
