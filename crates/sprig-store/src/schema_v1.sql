-- Sprig device store, schema version 1.
-- `auto_vacuum = INCREMENTAL` and `journal_mode = WAL` are set by `Store::create` before this
-- runs (auto_vacuum only takes effect before the first table exists).

-- Automerge documents: one row per document (a journal per child, the roster, the setting),
-- a compacted snapshot plus incremental chunks appended since. Loading = snapshot ++ chunks.
CREATE TABLE documents (
    doc_id         TEXT PRIMARY KEY,              -- 'journal/<child id>', 'roster', 'setting'
    kind           TEXT NOT NULL CHECK (kind IN ('journal', 'roster', 'setting')),
    child_id       TEXT UNIQUE,                   -- journals only
    epoch          INTEGER NOT NULL,
    snapshot       BLOB NOT NULL,
    snapshot_bytes INTEGER NOT NULL,
    chunk_count    INTEGER NOT NULL DEFAULT 0,
    chunk_bytes    INTEGER NOT NULL DEFAULT 0,
    heads          BLOB NOT NULL,                 -- heads as saved; the index reflects exactly these
    updated_at     INTEGER NOT NULL,              -- ms since the Unix epoch
    CHECK ((kind = 'journal') = (child_id IS NOT NULL))
);

CREATE TABLE doc_chunks (
    doc_id TEXT NOT NULL REFERENCES documents (doc_id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (doc_id, seq)
);

-- Automerge sync state per (peer, document), opaque to the store.
CREATE TABLE sync_states (
    peer       TEXT NOT NULL,
    doc_id     TEXT NOT NULL,
    state      BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (peer, doc_id)
) WITHOUT ROWID;

-- Derived index over the journals, rewritten in the same transaction as the document.
-- Everything here can be rebuilt from `documents` (`Store::rebuild_index`).
CREATE TABLE entries (
    child_id    TEXT NOT NULL REFERENCES documents (child_id) ON DELETE CASCADE,
    entry_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    group_id    TEXT,
    author_kind TEXT NOT NULL,
    author_id   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    edited_at   INTEGER,
    status      TEXT NOT NULL,
    text        TEXT NOT NULL,
    next_steps  TEXT NOT NULL,
    PRIMARY KEY (child_id, entry_id)
);
CREATE INDEX entries_by_child_time ON entries (child_id, created_at, entry_id);
CREATE INDEX entries_by_author ON entries (author_kind, author_id, created_at, entry_id, child_id);
CREATE INDEX entries_by_status ON entries (status, created_at, entry_id, child_id);
CREATE INDEX entries_by_group ON entries (group_id) WHERE group_id IS NOT NULL;

CREATE TABLE entry_areas (
    child_id   TEXT NOT NULL,
    entry_id   TEXT NOT NULL,
    pos        INTEGER NOT NULL,
    area       TEXT NOT NULL,
    created_at INTEGER NOT NULL,                  -- copied from the entry so area queries are one index scan
    PRIMARY KEY (child_id, entry_id, pos),
    FOREIGN KEY (child_id, entry_id) REFERENCES entries (child_id, entry_id) ON DELETE CASCADE
);
CREATE INDEX entry_areas_by_area ON entry_areas (area, created_at, entry_id, child_id);

CREATE TABLE entry_media (
    child_id TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    pos      INTEGER NOT NULL,
    sha256   TEXT NOT NULL,                       -- hex
    kind     TEXT NOT NULL,
    mime     TEXT NOT NULL,
    size     INTEGER NOT NULL,
    width    INTEGER NOT NULL,
    height   INTEGER NOT NULL,
    PRIMARY KEY (child_id, entry_id, pos),
    FOREIGN KEY (child_id, entry_id) REFERENCES entries (child_id, entry_id) ON DELETE CASCADE
);
CREATE INDEX entry_media_by_sha ON entry_media (sha256);

CREATE TABLE entry_replies (
    child_id    TEXT NOT NULL,
    entry_id    TEXT NOT NULL,
    pos         INTEGER NOT NULL,
    reply_id    TEXT NOT NULL,
    author_kind TEXT NOT NULL,
    author_id   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    text        TEXT NOT NULL,
    PRIMARY KEY (child_id, entry_id, pos),
    FOREIGN KEY (child_id, entry_id) REFERENCES entries (child_id, entry_id) ON DELETE CASCADE
);

-- Media vault: bytes in 256 KiB chunks, inside the encrypted database, `secure_delete` on.
-- state: captured (only here) -> uploaded (server acknowledged this SHA-256) -> purged (bytes
-- gone, at most the thumbnail kept). 'writing' exists only inside a MediaWriter's transaction.
CREATE TABLE media (
    id          INTEGER PRIMARY KEY,
    sha256      BLOB UNIQUE CHECK (sha256 IS NULL OR length(sha256) = 32),
    state       TEXT NOT NULL CHECK (state IN ('writing', 'captured', 'uploaded', 'purged')),
    mime        TEXT NOT NULL,
    size        INTEGER NOT NULL DEFAULT 0,
    captured_at INTEGER NOT NULL,
    uploaded_at INTEGER,
    purged_at   INTEGER,
    thumbnail   BLOB,
    CHECK ((state = 'writing') = (sha256 IS NULL))
);
CREATE INDEX media_by_state ON media (state);

CREATE TABLE media_chunks (
    media_id INTEGER NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (media_id, seq)
);
