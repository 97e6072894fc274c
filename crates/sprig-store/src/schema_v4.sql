-- Sprig device store, schema version 4: EYFS tagging beyond the areas of learning. Each entry's
-- Development Matters age band and its characteristics of effective learning (space-separated
-- text forms), materialised from the journal like every other indexed field. Entries indexed
-- before this step had neither.
ALTER TABLE entries ADD COLUMN band TEXT;
ALTER TABLE entries ADD COLUMN coel TEXT NOT NULL DEFAULT '';
