//! The derived index: journal entries as rows, so a timeline or a manager's view is one SQL
//! query returning whole entries instead of a scan of every document. Rewritten in the same
//! transaction as the document it derives from; rebuildable from the documents at any time.

use rusqlite::types::Type;
use rusqlite::{Connection, Row, Transaction, params};
use sprig_core::{
    AgeBand, Area, Author, Characteristic, ChildId, Entry, EntryId, EntryKind, EntryStatus,
    GroupId, Heads, Journal, MediaKind, MediaRef, Reply, ReplyId, Sha256, Timestamp,
};

use crate::docs::{DocId, doc_bytes};
use crate::error::Result;
use crate::store::Store;

/// A position in a newest-first list of entries: the next page holds the entries strictly older
/// than the entry the cursor was taken from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor {
    created_at: Timestamp,
    entry: EntryId,
    child: ChildId,
}

impl Cursor {
    /// The cursor after `entry` (typically the last entry of the page just shown).
    #[must_use]
    pub fn after(entry: &Entry) -> Self {
        Self {
            created_at: entry.created_at,
            entry: entry.id.clone(),
            child: entry.child.clone(),
        }
    }
}

/// How many entries one child has, and when the latest was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildCount {
    /// The child.
    pub child: ChildId,
    /// Entries in the journal, any status.
    pub entries: u64,
    /// Entries awaiting approval.
    pub pending: u64,
    /// Creation time of the newest entry.
    pub latest: Option<Timestamp>,
}

/// Staff observations counted from the index since a moment (`Store::observation_stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservationStats {
    /// Per child with a journal: the newest staff observation ever (any time), and how many
    /// were made since the moment asked for. Children without one are absent.
    pub per_child: Vec<(ChildId, Option<Timestamp>, u64)>,
    /// Per author (a member of staff's id): observations since the moment (a group
    /// observation counts once).
    pub per_author: Vec<(String, u64)>,
    /// Per area of learning: observations since the moment (an entry with two areas counts
    /// for both; a group observation counts once).
    pub per_area: Vec<(Area, u64)>,
    /// Per child with any: parent contributions awaiting review (any time).
    pub pending_per_child: Vec<(ChildId, u64)>,
}

/// Deletes every index row of `child`.
pub(crate) fn unindex_child(tx: &Transaction<'_>, child: &ChildId) -> Result<()> {
    tx.execute("DELETE FROM entries WHERE child_id = ?1", [child.as_str()])?;
    Ok(())
}

/// Rewrites the index rows of the entries that changed in `journal` since `since` (all of them
/// for empty heads).
pub(crate) fn apply_changes(
    tx: &Transaction<'_>,
    journal: &mut Journal,
    since: &Heads,
) -> Result<()> {
    let changed = journal.changed_since(since);
    let child = journal.child().clone();
    for id in &changed.removed {
        remove_entry(tx, &child, id)?;
    }
    for id in &changed.upserted {
        remove_entry(tx, &child, id)?;
        // An entry the journal cannot materialise (malformed by a buggy peer) is left out of
        // the index, as `Journal::entries` leaves it out.
        if let Some(entry) = journal.entry(id) {
            insert_entry(tx, &entry)?;
        }
    }
    Ok(())
}

/// Indexes every entry of `journal`, whose child has no index rows (just unindexed, or new).
/// One pass over the journal ([`Journal::entries`]) instead of one read per entry.
pub(crate) fn index_all(tx: &Transaction<'_>, journal: &Journal) -> Result<()> {
    index_entries(tx, &journal.entries())
}

/// Indexes entries already materialised (all of one journal, none indexed yet).
pub(crate) fn index_entries(tx: &Transaction<'_>, entries: &[Entry]) -> Result<()> {
    for entry in entries {
        insert_entry(tx, entry)?;
    }
    Ok(())
}

fn remove_entry(tx: &Transaction<'_>, child: &ChildId, id: &EntryId) -> Result<()> {
    tx.prepare_cached("DELETE FROM entries WHERE child_id = ?1 AND entry_id = ?2")?
        .execute(params![child.as_str(), id.as_str()])?;
    Ok(())
}

fn insert_entry(tx: &Transaction<'_>, e: &Entry) -> Result<()> {
    let child = e.child.as_str();
    let id = e.id.as_str();
    tx.prepare_cached(
        "INSERT INTO entries (child_id, entry_id, kind, group_id, author_kind, author_id, created_at, \
         edited_at, status, text, next_steps, band, coel) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        child,
        id,
        e.kind.as_str(),
        e.group.as_ref().map(GroupId::as_str),
        e.author.kind_str(),
        e.author.id_str(),
        e.created_at.0,
        e.edited_at.map(|t| t.0),
        e.status.as_str(),
        e.text,
        e.next_steps,
        e.band.map(AgeBand::as_str),
        e.characteristics
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    ])?;
    let mut areas = tx.prepare_cached(
        "INSERT INTO entry_areas (child_id, entry_id, pos, area, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (pos, area) in (0_i64..).zip(&e.areas) {
        areas.execute(params![child, id, pos, area.as_str(), e.created_at.0])?;
    }
    let mut media = tx.prepare_cached(
        "INSERT INTO entry_media (child_id, entry_id, pos, sha256, kind, mime, size, width, height) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (pos, m) in (0_i64..).zip(&e.media) {
        media.execute(params![
            child,
            id,
            pos,
            m.sha256.to_hex(),
            m.kind.as_str(),
            m.mime,
            i64::try_from(m.size).unwrap_or(i64::MAX),
            m.width,
            m.height,
        ])?;
    }
    let mut replies = tx.prepare_cached(
        "INSERT INTO entry_replies (child_id, entry_id, pos, reply_id, author_kind, author_id, created_at, text) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (pos, r) in (0_i64..).zip(&e.replies) {
        replies.execute(params![
            child,
            id,
            pos,
            r.id.as_str(),
            r.author.kind_str(),
            r.author.id_str(),
            r.created_at.0,
            r.text,
        ])?;
    }
    Ok(())
}

/// Turns a parse failure of a stored value into a rusqlite conversion error (→ `Corrupt`-ish).
pub(crate) fn parse_id<T, E: std::error::Error + Send + Sync + 'static>(
    s: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<T> {
    parse(s).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, Box::new(e)))
}

const ENTRY_COLUMNS: &str = "e.child_id, e.entry_id, e.kind, e.group_id, e.author_kind, e.author_id, \
                             e.created_at, e.edited_at, e.status, e.text, e.next_steps, e.band, e.coel";

fn author(kind: &str, id: &str) -> rusqlite::Result<Author> {
    Author::from_parts(kind, id)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, Box::new(e)))
}

/// An entry's own row, before areas, media and replies are attached.
fn entry_row(r: &Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        child: parse_id(&r.get::<_, String>(0)?, ChildId::parse)?,
        id: parse_id(&r.get::<_, String>(1)?, EntryId::parse)?,
        kind: parse_id(&r.get::<_, String>(2)?, EntryKind::parse)?,
        group: r
            .get::<_, Option<String>>(3)?
            .map(|g| parse_id(&g, GroupId::parse))
            .transpose()?,
        author: author(&r.get::<_, String>(4)?, &r.get::<_, String>(5)?)?,
        created_at: Timestamp(r.get(6)?),
        edited_at: r.get::<_, Option<i64>>(7)?.map(Timestamp),
        status: parse_id(&r.get::<_, String>(8)?, EntryStatus::parse)?,
        text: r.get(9)?,
        next_steps: r.get(10)?,
        band: r
            .get::<_, Option<String>>(11)?
            .map(|b| parse_id(&b, AgeBand::parse))
            .transpose()?,
        characteristics: r
            .get::<_, String>(12)?
            .split_whitespace()
            .map(|c| parse_id(c, Characteristic::parse))
            .collect::<rusqlite::Result<_>>()?,
        areas: Vec::new(),
        media: Vec::new(),
        replies: Vec::new(),
    })
}

/// Fills in areas, media and replies of a page of entries: three queries for the whole page
/// (each joins the page's keys, passed as one JSON array, to an index), not three per entry.
fn complete(conn: &Connection, entries: &mut [Entry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    // Ids are validated UUIDs, so they need no JSON escaping.
    let mut keys = String::with_capacity(entries.len() * 80 + 2);
    keys.push('[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            keys.push(',');
        }
        keys.push_str(&format!("[\"{}\",\"{}\"]", e.child, e.id));
    }
    keys.push(']');
    let join = |table: &str, columns: &str| {
        format!(
            "SELECT k.key, {columns} FROM json_each(?1) k JOIN {table} m \
             ON m.child_id = k.value ->> 0 AND m.entry_id = k.value ->> 1 ORDER BY k.key, m.pos"
        )
    };
    let index = |r: &Row<'_>| -> rusqlite::Result<usize> {
        usize::try_from(r.get::<_, i64>(0)?)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Integer, Box::new(e)))
    };

    let mut stmt = conn.prepare_cached(&join("entry_areas", "m.area"))?;
    let mut rows = stmt.query([&keys])?;
    while let Some(r) = rows.next()? {
        entries[index(r)?]
            .areas
            .push(parse_id(&r.get::<_, String>(1)?, Area::parse)?);
    }
    drop(rows);

    let mut stmt = conn.prepare_cached(&join(
        "entry_media",
        "m.sha256, m.kind, m.mime, m.size, m.width, m.height",
    ))?;
    let mut rows = stmt.query([&keys])?;
    while let Some(r) = rows.next()? {
        entries[index(r)?].media.push(MediaRef {
            sha256: parse_id(&r.get::<_, String>(1)?, Sha256::from_hex)?,
            kind: parse_id(&r.get::<_, String>(2)?, MediaKind::parse)?,
            mime: r.get(3)?,
            size: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
            width: r.get(5)?,
            height: r.get(6)?,
        });
    }
    drop(rows);

    let mut stmt = conn.prepare_cached(&join(
        "entry_replies",
        "m.reply_id, m.author_kind, m.author_id, m.created_at, m.text",
    ))?;
    let mut rows = stmt.query([&keys])?;
    while let Some(r) = rows.next()? {
        entries[index(r)?].replies.push(Reply {
            id: parse_id(&r.get::<_, String>(1)?, ReplyId::parse)?,
            author: author(&r.get::<_, String>(2)?, &r.get::<_, String>(3)?)?,
            created_at: Timestamp(r.get(4)?),
            text: r.get(5)?,
        });
    }
    Ok(())
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

type Named<'a> = [(&'a str, &'a dyn rusqlite::ToSql)];

impl Store {
    /// Runs `sql` (which selects [`ENTRY_COLUMNS`] from `entries e`) and completes the entries.
    fn query_entries(&self, sql: &str, params: &Named<'_>) -> Result<Vec<Entry>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut entries: Vec<Entry> = stmt
            .query_map(params, entry_row)?
            .collect::<rusqlite::Result<_>>()?;
        complete(&self.conn, &mut entries)?;
        Ok(entries)
    }

    /// A child's entries, newest first, at most `limit`, strictly older than `before`.
    ///
    /// # Errors
    /// A database failure.
    pub fn timeline(
        &self,
        child: &ChildId,
        limit: usize,
        before: Option<&Cursor>,
    ) -> Result<Vec<Entry>> {
        let order = "ORDER BY e.created_at DESC, e.entry_id DESC LIMIT :limit";
        let limit = limit_param(limit);
        match before {
            None => self.query_entries(
                &format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.child_id = :child {order}"),
                &[(":child", &child.as_str()), (":limit", &limit)],
            ),
            Some(c) => self.query_entries(
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.child_id = :child \
                     AND (e.created_at, e.entry_id) < (:at, :entry) {order}"
                ),
                &[
                    (":child", &child.as_str()),
                    (":limit", &limit),
                    (":at", &c.created_at.0),
                    (":entry", &c.entry.as_str()),
                ],
            ),
        }
    }

    /// One entry of a child's journal, from the index.
    ///
    /// # Errors
    /// [`crate::StoreError::NotFound`] when absent.
    pub fn entry(&self, child: &ChildId, id: &EntryId) -> Result<Entry> {
        self.query_entries(
            &format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.child_id = :child AND e.entry_id = :entry"),
            &[(":child", &child.as_str()), (":entry", &id.as_str())],
        )?
        .pop()
        .ok_or_else(|| crate::StoreError::not_found(format!("entry {id} of child {child}")))
    }

    /// A newest-first, cross-child listing. `t` is the alias of the table in `from` that orders
    /// the rows (it has `created_at`, `entry_id`, `child_id`); `filter` uses the named
    /// parameters in `params`.
    fn listing(
        &self,
        from: &str,
        t: &str,
        filter: &str,
        params: &Named<'_>,
        limit: usize,
        before: Option<&Cursor>,
    ) -> Result<Vec<Entry>> {
        let order = format!(
            "ORDER BY {t}.created_at DESC, {t}.entry_id DESC, {t}.child_id DESC LIMIT :limit"
        );
        let limit = limit_param(limit);
        let mut all: Vec<(&str, &dyn rusqlite::ToSql)> = params.to_vec();
        all.push((":limit", &limit));
        let cursor;
        let sql = match before {
            None => format!("SELECT {ENTRY_COLUMNS} FROM {from} WHERE {filter} {order}"),
            Some(c) => {
                cursor = (c.created_at.0, c.entry.as_str(), c.child.as_str());
                all.extend_from_slice(&[
                    (":at", &cursor.0),
                    (":entry", &cursor.1),
                    (":child", &cursor.2),
                ]);
                format!(
                    "SELECT {ENTRY_COLUMNS} FROM {from} WHERE {filter} \
                     AND ({t}.created_at, {t}.entry_id, {t}.child_id) < (:at, :entry, :child) {order}"
                )
            }
        };
        self.query_entries(&sql, &all)
    }

    /// Entries written by `author` (staff or parent) across all children, newest first.
    ///
    /// # Errors
    /// A database failure.
    pub fn entries_by_author(
        &self,
        author: &Author,
        limit: usize,
        before: Option<&Cursor>,
    ) -> Result<Vec<Entry>> {
        self.listing(
            "entries e",
            "e",
            "e.author_kind = :kind AND e.author_id = :author",
            &[(":kind", &author.kind_str()), (":author", &author.id_str())],
            limit,
            before,
        )
    }

    /// Entries tagged with an area of learning, across all children, newest first.
    ///
    /// # Errors
    /// A database failure.
    pub fn entries_by_area(
        &self,
        area: Area,
        limit: usize,
        before: Option<&Cursor>,
    ) -> Result<Vec<Entry>> {
        self.listing(
            "entry_areas a JOIN entries e ON e.child_id = a.child_id AND e.entry_id = a.entry_id",
            "a",
            "a.area = :area",
            &[(":area", &area.as_str())],
            limit,
            before,
        )
    }

    /// Entries in a status across all children, newest first (e.g. parent contributions
    /// pending approval).
    ///
    /// # Errors
    /// A database failure.
    pub fn entries_by_status(
        &self,
        status: EntryStatus,
        limit: usize,
        before: Option<&Cursor>,
    ) -> Result<Vec<Entry>> {
        self.listing(
            "entries e",
            "e",
            "e.status = :status",
            &[(":status", &status.as_str())],
            limit,
            before,
        )
    }

    /// Every child's copy of one group observation.
    ///
    /// # Errors
    /// A database failure.
    pub fn entries_in_group(&self, group: &GroupId) -> Result<Vec<Entry>> {
        self.query_entries(
            &format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.group_id = :group ORDER BY e.child_id"),
            &[(":group", &group.as_str())],
        )
    }

    /// The children whose journals hold a copy of `entry` (one, or each child of a group
    /// observation), sorted. Empty when no journal holds it.
    ///
    /// # Errors
    /// A database failure.
    pub fn entry_children(&self, entry: &EntryId) -> Result<Vec<ChildId>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT child_id FROM entries WHERE entry_id = ?1 ORDER BY child_id")?;
        let rows = stmt.query_map([entry.as_str()], |r| {
            parse_id(&r.get::<_, String>(0)?, ChildId::parse)
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Entries that reference the media item `sha`.
    ///
    /// # Errors
    /// A database failure.
    pub fn entries_with_media(&self, sha: &Sha256) -> Result<Vec<Entry>> {
        let hex = sha.to_hex();
        self.query_entries(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM entries e WHERE EXISTS (SELECT 1 FROM entry_media m \
                 WHERE m.child_id = e.child_id AND m.entry_id = e.entry_id AND m.sha256 = :sha) \
                 ORDER BY e.created_at DESC, e.entry_id DESC"
            ),
            &[(":sha", &hex)],
        )
    }

    /// Per child with a journal: number of entries, pending ones and the newest entry's time.
    /// Children with an empty journal are included with zero.
    ///
    /// # Errors
    /// A database failure.
    pub fn counts_per_child(&self) -> Result<Vec<ChildCount>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.child_id, count(e.entry_id), count(CASE WHEN e.status = 'pending' THEN 1 END), \
             max(e.created_at) \
             FROM documents d LEFT JOIN entries e ON e.child_id = d.child_id \
             WHERE d.kind = 'journal' GROUP BY d.child_id ORDER BY d.child_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ChildCount {
                child: parse_id(&r.get::<_, String>(0)?, ChildId::parse)?,
                entries: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                pending: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                latest: r.get::<_, Option<i64>>(3)?.map(Timestamp),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Staff observations (drafts and published, not parent contributions) per child, per
    /// author and per area since `since`, plus each child's newest observation ever: the
    /// manager's coverage and the home screen's "not observed for N days", in three queries.
    ///
    /// # Errors
    /// A database failure.
    pub fn observation_stats(&self, since: Timestamp) -> Result<ObservationStats> {
        let mut out = ObservationStats::default();
        let mut stmt = self.conn.prepare_cached(
            "SELECT child_id, max(created_at), count(CASE WHEN created_at >= ?1 THEN 1 END) \
             FROM entries WHERE kind = 'observation' GROUP BY child_id ORDER BY child_id",
        )?;
        for row in stmt.query_map([since.0], |r| {
            Ok((
                parse_id(&r.get::<_, String>(0)?, ChildId::parse)?,
                r.get::<_, Option<i64>>(1)?.map(Timestamp),
                u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            ))
        })? {
            out.per_child.push(row?);
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT author_id, count(DISTINCT entry_id) FROM entries WHERE kind = 'observation' \
             AND author_kind = 'staff' AND created_at >= ?1 GROUP BY author_id ORDER BY author_id",
        )?;
        for row in stmt.query_map([since.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
            ))
        })? {
            out.per_author.push(row?);
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.area, count(DISTINCT a.entry_id) FROM entry_areas a JOIN entries e \
             ON e.child_id = a.child_id AND e.entry_id = a.entry_id \
             WHERE e.kind = 'observation' AND a.created_at >= ?1 GROUP BY a.area",
        )?;
        for row in stmt.query_map([since.0], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })? {
            let (area, n) = row?;
            if let Ok(area) = Area::parse(&area) {
                out.per_area.push((area, u64::try_from(n).unwrap_or(0)));
            }
        }
        out.per_area.sort();
        // Through the status index: no entry row (with its text) is decrypted for this.
        let mut stmt = self.conn.prepare_cached(
            "SELECT child_id, count(*) FROM entries WHERE status = 'pending' GROUP BY child_id",
        )?;
        for row in stmt.query_map([], |r| {
            Ok((
                parse_id(&r.get::<_, String>(0)?, ChildId::parse)?,
                u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
            ))
        })? {
            out.pending_per_child.push(row?);
        }
        Ok(out)
    }

    /// Recomputes the whole index from the stored journals, in one transaction. For recovery
    /// (e.g. after an index bug); normal writes keep the index current.
    ///
    /// # Errors
    /// [`crate::StoreError::Document`] when a stored journal cannot be loaded; nothing changes then.
    pub fn rebuild_index(&mut self) -> Result<()> {
        let children = self.journal_children()?;
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM entries", [])?;
        for child in children {
            let id = DocId::Journal(child);
            let bytes = doc_bytes(&tx, &id)?;
            let mut journal = Journal::load(&bytes)?;
            index_all(&tx, &journal)?;
            tx.execute(
                "UPDATE documents SET heads = ?2 WHERE doc_id = ?1",
                params![id.storage_key(), journal.heads().to_bytes()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}
