-- Schema step 7: the managers' console (as SQLite's step 9). Where a manager's request came
-- from, in the audit log; off-site permission per device; the audit log by time, for its
-- filters; the staff observations a manager has reviewed (the review gate).

ALTER TABLE audit ADD COLUMN IF NOT EXISTS client TEXT;
ALTER TABLE devices ADD COLUMN IF NOT EXISTS offsite_until BIGINT;
CREATE INDEX IF NOT EXISTS audit_by_at ON audit (setting_id, at);

CREATE TABLE IF NOT EXISTS entry_reviews (
    setting_id UUID NOT NULL REFERENCES settings (id) ON DELETE CASCADE,
    entry_id TEXT NOT NULL,
    reviewed_at BIGINT NOT NULL,
    reviewed_by TEXT NOT NULL,
    PRIMARY KEY (setting_id, entry_id)
);
