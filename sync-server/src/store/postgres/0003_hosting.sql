-- Schema step 3 (hosting): events that every replica acts on, and attempt counters.
--
-- setting_events: what running servers must act on (a device's status changed), written in
-- the same transaction as the change. The source of truth that carries a revoke or a wipe to
-- open sessions on every replica: each replica polls it (LISTEN/NOTIFY, where the engine has
-- it, only wakes them sooner). Numbered per setting from setting_counters.event_seq inside the
-- writing transaction (no sequence); `at` is the database's clock, so a replica can poll every
-- setting's recent events by time with one indexed query.
--
-- attempts: counted attempts (refused enrolments per address and per setting, later login
-- failures), so throttles and lock-outs hold across replicas. Random ids, no sequence.

ALTER TABLE setting_counters ADD COLUMN IF NOT EXISTS event_seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS setting_events (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    device TEXT,
    detail TEXT NOT NULL,
    PRIMARY KEY (setting_id, seq)
);
CREATE INDEX IF NOT EXISTS setting_events_by_at ON setting_events (at);

CREATE TABLE IF NOT EXISTS attempts (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    at BIGINT NOT NULL,
    id UUID NOT NULL,
    PRIMARY KEY (setting_id, scope, key, at, id)
);
CREATE INDEX IF NOT EXISTS attempts_by_at ON attempts (at);
