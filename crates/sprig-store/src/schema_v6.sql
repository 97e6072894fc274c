-- Sprig device store, schema version 6: when the server quarantined this device (it refused a
-- change the device sent). Until a sync completes again, after a manager releases it, the
-- device records nothing new: the server will replace the refused documents with its copies.
ALTER TABLE device_identity ADD COLUMN quarantined_at INTEGER;
