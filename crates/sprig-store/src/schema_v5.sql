-- Sprig device store, schema version 5: the tablet app's lookups. An entry by id alone (publish,
-- edit, reply and review find every journal holding a copy of an entry), and staff observations
-- per child by time (home's "last observed", a manager's coverage).
CREATE INDEX entries_by_entry ON entries (entry_id);
CREATE INDEX entries_observations ON entries (kind, child_id, created_at);
