-- Sprig device store, schema version 3: device lifecycle security (lease, PIN throttling).
-- All of it lives inside the encrypted database, so a stolen tablet cannot reset its counters
-- or extend its lease by editing a file.

-- The last offline lease the server signed (at most one row), with the device clock at the
-- moment it was stored: the last check-in, from which lock_after and wipe_after count.
CREATE TABLE device_lease (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    device_id        TEXT NOT NULL,
    issued_at_ms     INTEGER NOT NULL,             -- server clock
    lock_after_secs  INTEGER NOT NULL,
    wipe_after_secs  INTEGER NOT NULL,
    max_pin_failures INTEGER NOT NULL,
    signature        BLOB NOT NULL,                -- ECDSA P-256 / SHA-256 by the setting CA
    received_at_ms   INTEGER NOT NULL              -- device clock when stored
);

-- Every wrong PIN, kept until a sync has reported it to the server (then marked reported).
CREATE TABLE pin_failures (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    staff_id TEXT NOT NULL,
    at_ms    INTEGER NOT NULL,                     -- device clock
    reported INTEGER NOT NULL DEFAULT 0 CHECK (reported IN (0, 1))
);
CREATE INDEX pin_failures_unreported ON pin_failures (reported, seq);

-- PIN throttling (exactly one row): consecutive wrong PINs (any staff), the last one's time,
-- and the lock-out set at the lease's max_pin_failures, cleared only by a successful sync.
CREATE TABLE pin_lock (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    consecutive     INTEGER NOT NULL DEFAULT 0,
    last_failure_ms INTEGER,
    locked_at_ms    INTEGER
);
INSERT INTO pin_lock (id, consecutive) VALUES (1, 0);

-- Documents changed on this device since the server last acknowledged them (one row per
-- change, cleared up to a sequence number after a completed sync session).
CREATE TABLE dirty_docs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc TEXT NOT NULL                              -- DocId storage key
);
