-- Schema step 7: the managers' console (as SQLite's step 9). Where a manager's request came
-- from, in the audit log; off-site permission per device; the audit log by time, for its
-- filters.

ALTER TABLE audit ADD COLUMN IF NOT EXISTS client TEXT;
ALTER TABLE devices ADD COLUMN IF NOT EXISTS offsite_until BIGINT;
CREATE INDEX IF NOT EXISTS audit_by_at ON audit (setting_id, at);
