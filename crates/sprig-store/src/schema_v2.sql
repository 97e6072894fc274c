-- Sprig device store, schema version 2: the device's identity from enrolment.
-- At most one row. The client private key lives only here, inside the encrypted database,
-- never in a plain file.
CREATE TABLE device_identity (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    device_id       TEXT NOT NULL,
    server_url      TEXT NOT NULL,
    ca_cert_pem     TEXT NOT NULL,               -- the pinned setting CA, the only trust anchor
    client_cert_pem TEXT NOT NULL,
    client_key_pem  TEXT NOT NULL,
    enrolled_at     INTEGER NOT NULL,             -- ms since the Unix epoch
    last_sync_at    INTEGER                       -- ms since the Unix epoch, device clock
);
