//! Documents on the server: [`AnyDoc`] loads and saves the three kinds from stored bytes, and
//! [`DeviceDocs`] is the [`DocSet`] a sync session with one device runs on. A session lists
//! heads from the store, sends a missing document as its stored bytes, and loads a document
//! only when a sync message for it must be generated or applied.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sprig_core::{
    DocError, Document, Heads, Journal, ReceiveError, Roster, RosterView, SettingDoc, SyncState,
    Violation,
};
use sprig_proto::{DocId, DocSet, DocSetError, DocSummary};

use crate::store::{DocWrite, ServerStore, StoreError, StoredDoc};

/// A document has more appended chunks than this after a commit: compact it.
const COMPACT_AFTER_CHUNKS: usize = 64;

/// One of the three document kinds, loaded (the core's [`Document`]).
pub type AnyDoc = Document;

/// Loads `doc` from its stored snapshot and chunks, checking that it is that document.
///
/// # Errors
/// [`DocError`] when the bytes are damaged or are another document.
pub fn load_stored(doc: &DocId, stored: &StoredDoc) -> Result<AnyDoc, DocError> {
    let mut d = match doc {
        DocId::Roster => Document::Roster(Roster::load(&stored.snapshot)?),
        DocId::Setting => Document::Setting(SettingDoc::load(&stored.snapshot)?),
        DocId::Journal(child) => {
            let j = Journal::load(&stored.snapshot)?;
            if j.child() != child {
                return Err(DocError::DifferentDocument);
            }
            Document::Journal(j)
        }
    };
    for chunk in &stored.chunks {
        d.apply_incremental(chunk)?;
    }
    // What was loaded is stored: only later changes are "incremental".
    let _ = d.save_incremental();
    Ok(d)
}

/// A document could not be read from or written to the store.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DocStoreError {
    /// The document does not exist (the data directory was not initialised?).
    #[error("{0} does not exist on this server; run `sprig-server init` first")]
    Missing(DocId),
    /// The stored bytes do not load.
    #[error("{doc} is damaged on the server: {source}")]
    Damaged {
        /// The document.
        doc: DocId,
        /// Why it does not load.
        #[source]
        source: DocError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Loads a document from the store.
///
/// # Errors
/// [`DocStoreError`].
pub fn load_doc(store: &dyn ServerStore, doc: &DocId) -> Result<AnyDoc, DocStoreError> {
    parse(doc, &read_stored(store, doc)?)
}

/// A document's stored record (bytes, version, heads), or [`DocStoreError::Missing`].
fn read_stored(store: &dyn ServerStore, doc: &DocId) -> Result<StoredDoc, DocStoreError> {
    store
        .load_doc(doc)?
        .ok_or_else(|| DocStoreError::Missing(doc.clone()))
}

/// The copy a stored record loads as, or [`DocStoreError::Damaged`].
fn parse(doc: &DocId, stored: &StoredDoc) -> Result<AnyDoc, DocStoreError> {
    load_stored(doc, stored).map_err(|source| DocStoreError::Damaged {
        doc: doc.clone(),
        source,
    })
}

/// Loads `doc`, lets `edit` change it, and appends the change (with the media its new entry
/// references) durably, based on the version loaded, so a concurrent writer's append merges.
fn edit_doc<T, E: From<DocStoreError>>(
    store: &dyn ServerStore,
    doc: DocId,
    media: Vec<String>,
    edit: impl FnOnce(&mut AnyDoc) -> Result<T, E>,
) -> Result<T, E> {
    let stored = read_stored(store, &doc)?;
    let version = stored.version;
    let mut d = parse(&doc, &stored)?;
    drop(stored);
    let out = edit(&mut d)?;
    let chunk = d.save_incremental();
    if !chunk.is_empty() {
        store
            .commit_changes(
                None,
                &[DocWrite {
                    doc,
                    chunks: vec![chunk],
                    heads: d.heads(),
                    base_version: version,
                    media,
                }],
                &[],
                &[],
            )
            .map_err(DocStoreError::from)?;
    }
    Ok(out)
}

/// What the portal reads on every journal page, kept between requests for as long as the
/// stored journal keeps the heads it was read at: each journal's materialised entries (plain
/// values, not the Automerge document). Loading a year's journal and materialising its entries
/// cost about 12 ms of a page (docs/BENCHMARKS.md, parents' portal); reading the stored bytes to
/// learn their heads costs a fraction of a millisecond. The roster is not kept: a shared
/// Automerge roster grew the server's memory threefold in the same benchmark. A document whose stored heads are unknown (two
/// writers at once, or never written since created) is read afresh, and the heads of what
/// was read are recorded in the store for its version.
#[derive(Debug, Default)]
pub struct ReadCache {
    entries: std::sync::Mutex<BTreeMap<sprig_core::ChildId, (Heads, Entries)>>,
}

/// The heads of a copy loaded from `stored`. When the store did not know them (two writers at
/// once), they are recorded for the version loaded, as a session's listing does, so the next
/// read finds them; a failure to record costs only a later fresh read.
/// A journal's entries, shared by the requests that read them.
pub type Entries = Arc<Vec<sprig_core::Entry>>;

fn known_heads(store: &dyn ServerStore, doc: &DocId, stored: &StoredDoc, loaded: Heads) -> Heads {
    if stored.heads.is_none() {
        let _ = store.set_doc_heads(doc, stored.version, &loaded);
    }
    loaded
}

fn held<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ReadCache {
    /// A child's journal entries (every one, as `Journal::entries` gives them) as stored now.
    ///
    /// # Errors
    /// [`DocStoreError`] when the journal is missing, damaged or the store fails.
    pub fn entries(
        &self,
        store: &dyn ServerStore,
        child: &sprig_core::ChildId,
    ) -> Result<Entries, DocStoreError> {
        let doc = DocId::Journal(child.clone());
        let stored = read_stored(store, &doc)?;
        if let Some(h) = &stored.heads
            && let Some((_, e)) = held(&self.entries).get(child).filter(|(k, _)| k == h)
        {
            return Ok(e.clone());
        }
        let Document::Journal(mut j) = parse(&doc, &stored)? else {
            unreachable!("load_stored returns the kind asked for");
        };
        let h = known_heads(store, &doc, &stored, j.heads());
        let e = Arc::new(j.entries());
        held(&self.entries).insert(child.clone(), (h, e.clone()));
        Ok(e)
    }
}

/// Loads the roster, lets `edit` change it, and appends the change durably. Used by admin
/// commands: concurrent edits by devices or other commands merge, as they are separate chunks.
///
/// # Errors
/// [`DocStoreError`], or `edit`'s error.
pub fn edit_roster<T, E: From<DocStoreError>>(
    store: &dyn ServerStore,
    edit: impl FnOnce(&mut Roster) -> Result<T, E>,
) -> Result<T, E> {
    edit_doc(store, DocId::Roster, Vec::new(), |d| match d {
        AnyDoc::Roster(r) => edit(r),
        _ => unreachable!("load_stored returns the kind asked for"),
    })
}

/// Loads the setting document, lets `edit` change it, and appends the change durably: how a
/// manager's policy change reaches the tablets at their next sync.
///
/// # Errors
/// [`DocStoreError`], or `edit`'s error.
pub fn edit_setting<T, E: From<DocStoreError>>(
    store: &dyn ServerStore,
    edit: impl FnOnce(&mut SettingDoc) -> Result<T, E>,
) -> Result<T, E> {
    edit_doc(store, DocId::Setting, Vec::new(), |d| match d {
        AnyDoc::Setting(s) => edit(s),
        _ => unreachable!("load_stored returns the kind asked for"),
    })
}

/// Loads a child's journal, lets `edit` change it, and appends the change durably: how the
/// portal writes a parent's reply. Tablets receive it at their next sync, merged with theirs.
///
/// # Errors
/// [`DocStoreError`], or `edit`'s error.
pub fn edit_journal<T, E: From<DocStoreError>>(
    store: &dyn ServerStore,
    child: &sprig_core::ChildId,
    edit: impl FnOnce(&mut Journal) -> Result<T, E>,
) -> Result<T, E> {
    edit_journal_with_media(store, child, Vec::new(), edit)
}

/// [`edit_journal`] for an edit whose new entry references media (hex SHA-256, already in
/// the media store): the reference index is written in the same commit, so tablets may
/// fetch them. How the portal writes a parent's contribution.
///
/// # Errors
/// [`DocStoreError`], or `edit`'s error.
pub fn edit_journal_with_media<T, E: From<DocStoreError>>(
    store: &dyn ServerStore,
    child: &sprig_core::ChildId,
    media: Vec<String>,
    edit: impl FnOnce(&mut Journal) -> Result<T, E>,
) -> Result<T, E> {
    edit_doc(store, DocId::Journal(child.clone()), media, |d| match d {
        AnyDoc::Journal(j) => edit(j),
        _ => unreachable!("load_stored returns the kind asked for"),
    })
}

/// One-time moves of data written by earlier versions, done when a store is opened; each is
/// marked done in the store's meta table.
///
/// 1. Parents' e-mail addresses leave the replicated roster (tablets must not hold contact
///    data): they move into the server store, and the roster is rebuilt as a new epoch
///    without them, which every tablet receives whole in place of its copy and its history.
/// 2. The index of media that entries reference (only those may be uploaded) is built from
///    the journals stored before it existed.
///
/// # Errors
/// [`DocStoreError`].
pub fn upgrade(store: &dyn ServerStore) -> Result<(), DocStoreError> {
    if store.meta("upgrade.roster_contacts")?.as_deref() != Some("done") {
        let AnyDoc::Roster(roster) = load_doc(store, &DocId::Roster)? else {
            unreachable!("load_doc returns the kind asked for");
        };
        let emails = roster.legacy_parent_emails();
        if !emails.is_empty() {
            let at = crate::admin::now_ms();
            for (parent, email) in &emails {
                match store.set_parent_email(parent.as_str(), email, at) {
                    Ok(()) => {}
                    // Two parents with one address can only come from a damaged roster:
                    // keep the first, report the other.
                    Err(StoreError::AlreadyExists(_)) => {
                        tracing::warn!(%parent, "a parent's e-mail address is taken; not moved");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let mut next = roster.rebuild_epoch();
            store.replace_doc(&DocId::Roster, next.epoch(), &next.save())?;
            store.audit(&crate::store::AuditEvent {
                at,
                actor: "server".into(),
                device: None,
                action: "roster_contacts_moved".into(),
                detail: format!("parents={} epoch={}", emails.len(), next.epoch()),
                client: None,
            })?;
        }
        store.set_meta("upgrade.roster_contacts", "done")?;
    }
    if store.meta("upgrade.media_refs")?.as_deref() != Some("done") {
        let mut refs = Vec::new();
        for (doc, _) in store.list_docs()? {
            if let AnyDoc::Journal(j) = load_doc(store, &doc)? {
                for e in j.entries() {
                    refs.extend(e.media.iter().map(|m| (m.sha256.to_hex(), doc.clone())));
                }
            }
        }
        store.add_media_refs(&refs)?;
        store.set_meta("upgrade.media_refs", "done")?;
    }
    Ok(())
}

/// Rewrites a document's snapshot from everything stored so far, dropping its chunks.
///
/// # Errors
/// [`DocStoreError`].
pub fn compact(store: &dyn ServerStore, doc: &DocId) -> Result<(), DocStoreError> {
    let stored = store
        .load_doc(doc)?
        .ok_or_else(|| DocStoreError::Missing(doc.clone()))?;
    if stored.chunks.is_empty() {
        return Ok(());
    }
    let mut d = load_stored(doc, &stored).map_err(|source| DocStoreError::Damaged {
        doc: doc.clone(),
        source,
    })?;
    let heads = d.heads();
    store.compact_doc(doc, &d.save(), stored.last_seq, stored.version, &heads)?;
    Ok(())
}

#[derive(Debug)]
struct Loaded {
    doc: AnyDoc,
    /// The store's version of the document that this copy holds every change of.
    version: u64,
    /// Its heads when loaded: everything after them came from the device in this session.
    base: Heads,
    chunks_in_store: usize,
    /// Changes saved out of the document (before a snapshot) but not yet committed.
    pending: Vec<Vec<u8>>,
}

/// A change a device sent that the server refused, with everything the device sent for that
/// document in the session, held for review.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The document.
    pub doc: DocId,
    /// The rule broken.
    pub violation: Violation,
    /// The device's changes to the document in this session (loadable on top of the
    /// server's copy), never applied.
    pub held: Vec<u8>,
}

/// The server's documents seen from one device's sync session: every document of the setting
/// (roster, setting, all journals), listed by their stored heads, loaded only when a sync
/// message needs one.
///
/// Nothing a device sends is trusted: the roster and setting documents are the server's alone
/// (any change to them is refused), and every change to a journal is checked by
/// [`Journal::validate_since`] against the server's roster before it is kept. A session's
/// changes and sync states are held in memory and written together, in one transaction, by
/// [`DeviceDocs::publish`] once the session has converged: a session that breaks a rule, or
/// fails, leaves nothing of itself on the server, so no other replica ever sees it.
#[derive(Debug)]
pub struct DeviceDocs {
    store: Arc<dyn ServerStore>,
    device: String,
    cache: BTreeMap<DocId, Loaded>,
    /// The roster journal changes are checked against, found at the first check.
    roster: Option<Arc<RosterView>>,
    /// The setting's roster views, shared by its sessions.
    views: Arc<RosterViews>,
    /// The session's sync states, written with its changes by `publish`.
    states: BTreeMap<DocId, Vec<u8>>,
    /// Media referenced by entries the session added, per document.
    media: BTreeMap<DocId, BTreeSet<String>>,
    /// The first refused change of the session.
    refusal: Option<Refusal>,
}

fn store_err(e: impl std::error::Error + Send + Sync + 'static) -> DocSetError {
    DocSetError::Store(Box::new(e))
}

/// What a device is told when the server's own copy of a document does not load.
fn damaged(doc: &DocId, source: &DocError) -> DocSetError {
    let detail = match source {
        DocError::Corrupt(d) => d.clone(),
        other => other.to_string(),
    };
    DocSetError::Damaged(format!(
        "the server's copy of {doc} is damaged ({detail}); the setting's administrator must \
         restore the server from a backup. Nothing on this tablet was lost, and syncing again \
         will not help until then"
    ))
}

/// The view of the roster that journal changes are checked against, kept between sessions
/// for as long as the stored roster keeps the heads it was built from. Loading the roster and
/// building its view costs about half of what loading a year's journal does, so building it
/// once per roster change, not once per session, keeps the checks cheap (docs/BENCHMARKS.md).
#[derive(Debug, Default)]
pub struct RosterViews(std::sync::Mutex<Option<(Heads, Arc<RosterView>)>>);

impl RosterViews {
    fn get(&self, heads: &Heads) -> Option<Arc<RosterView>> {
        let held = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.as_ref()
            .filter(|(h, _)| h == heads)
            .map(|(_, v)| v.clone())
    }

    fn put(&self, heads: Heads, view: Arc<RosterView>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((heads, view));
    }
}

impl DeviceDocs {
    /// A view for `device`, with roster views of its own.
    #[must_use]
    pub fn new(store: Arc<dyn ServerStore>, device: &str) -> DeviceDocs {
        DeviceDocs::with_views(store, device, Arc::default())
    }

    /// A view for `device` that shares `views` with the setting's other sessions.
    #[must_use]
    pub fn with_views(
        store: Arc<dyn ServerStore>,
        device: &str,
        views: Arc<RosterViews>,
    ) -> DeviceDocs {
        DeviceDocs {
            store,
            device: device.to_owned(),
            cache: BTreeMap::new(),
            roster: None,
            views,
            states: BTreeMap::new(),
            media: BTreeMap::new(),
            refusal: None,
        }
    }

    fn load(&mut self, doc: &DocId) -> Result<(), DocSetError> {
        if self.cache.contains_key(doc) {
            return Ok(());
        }
        let stored = self
            .store
            .load_doc(doc)
            .map_err(store_err)?
            .ok_or_else(|| DocSetError::NotFound(doc.clone()))?;
        let mut loaded = load_stored(doc, &stored).map_err(|e| damaged(doc, &e))?;
        let base = loaded.heads();
        self.cache.insert(
            doc.clone(),
            Loaded {
                doc: loaded,
                version: stored.version,
                base,
                chunks_in_store: stored.chunks.len(),
                pending: Vec::new(),
            },
        );
        Ok(())
    }

    fn get(&mut self, doc: &DocId) -> Result<&mut Loaded, DocSetError> {
        self.load(doc)?;
        self.cache
            .get_mut(doc)
            .ok_or_else(|| DocSetError::NotFound(doc.clone()))
    }

    fn roster(&mut self) -> Result<&RosterView, DocSetError> {
        if self.roster.is_none() {
            let doc = DocId::Roster;
            let stored = self
                .store
                .load_doc(&doc)
                .map_err(store_err)?
                .ok_or_else(|| DocSetError::NotFound(doc.clone()))?;
            // The stored heads name the roster's content: a view built from the same heads
            // is this roster's view. Unknown heads (two writers at once) build afresh.
            if let Some(view) = stored.heads.as_ref().and_then(|h| self.views.get(h)) {
                self.roster = Some(view);
            } else {
                let view = match load_stored(&doc, &stored).map_err(|e| damaged(&doc, &e))? {
                    Document::Roster(r) => Arc::new(RosterView::new(&r)),
                    _ => return Err(DocSetError::NotFound(doc)),
                };
                if let Some(h) = stored.heads {
                    self.views.put(h, view.clone());
                }
                self.roster = Some(view);
            }
        }
        self.roster
            .as_deref()
            .ok_or_else(|| DocSetError::NotFound(DocId::Roster))
    }

    /// The change that was refused in this session, if one was.
    #[must_use]
    pub fn refusal(&self) -> Option<&Refusal> {
        self.refusal.as_ref()
    }

    /// Writes everything the session received, its sync states and the media its new entries
    /// reference, in one transaction; `replaced` are the documents whose copies the session
    /// replaced on the device after its release from quarantine. Call it once the session has
    /// converged, before the closing lease. Returns the documents that changed.
    ///
    /// # Errors
    /// [`DocStoreError::Store`]; nothing is written then.
    pub fn publish(&mut self, replaced: &[DocId]) -> Result<Vec<DocId>, DocStoreError> {
        let mut writes = Vec::new();
        for (doc, l) in &mut self.cache {
            let mut chunks = std::mem::take(&mut l.pending);
            let inc = l.doc.save_incremental();
            if !inc.is_empty() {
                chunks.push(inc);
            }
            if !chunks.is_empty() {
                l.chunks_in_store += chunks.len();
                writes.push(DocWrite {
                    doc: doc.clone(),
                    chunks,
                    heads: l.doc.heads(),
                    base_version: l.version,
                    media: self
                        .media
                        .remove(doc)
                        .map(|m| m.into_iter().collect())
                        .unwrap_or_default(),
                });
            }
        }
        let states: Vec<(DocId, Vec<u8>)> = std::mem::take(&mut self.states).into_iter().collect();
        if writes.is_empty() && states.is_empty() && replaced.is_empty() {
            return Ok(Vec::new());
        }
        self.store
            .commit_changes(Some(&self.device), &writes, &states, replaced)?;
        // Each write counted the stored version up by one. A copy that was behind stays
        // behind, so its later writes keep recording heads as unknown, as they must.
        for w in &writes {
            if let Some(l) = self.cache.get_mut(&w.doc) {
                l.version += 1;
                l.base = l.doc.heads();
            }
        }
        // Compaction is housekeeping: the changes are already durable, so a failure here is
        // logged, not fatal.
        for w in &writes {
            if let Some(l) = self.cache.get_mut(&w.doc)
                && l.chunks_in_store > COMPACT_AFTER_CHUNKS
            {
                match compact(self.store.as_ref(), &w.doc) {
                    Ok(()) => l.chunks_in_store = 0,
                    Err(e) => tracing::warn!(doc = %w.doc, error = %e, "compaction failed"),
                }
            }
        }
        Ok(writes.into_iter().map(|w| w.doc).collect())
    }
}

impl DocSet for DeviceDocs {
    fn list(&mut self) -> Result<Vec<DocSummary>, DocSetError> {
        let docs = self.store.list_doc_heads().map_err(store_err)?;
        let mut out = Vec::with_capacity(docs.len());
        for d in docs {
            let heads = match d.heads {
                Some(h) => h,
                // Unknown (new, written by two sessions at once, or stored before heads were
                // kept): load this one document once and record them for every later listing.
                None => {
                    let l = self.get(&d.doc)?;
                    let (heads, version) = (l.doc.heads(), l.version);
                    self.store
                        .set_doc_heads(&d.doc, version, &heads)
                        .map_err(store_err)?;
                    heads
                }
            };
            out.push(DocSummary {
                doc: d.doc,
                epoch: d.epoch,
                heads,
            });
        }
        Ok(out)
    }

    fn sync_state(&mut self, doc: &DocId) -> Result<Option<SyncState>, DocSetError> {
        Ok(self
            .store
            .sync_state(&self.device, doc)
            .map_err(store_err)?
            // A damaged state only costs a fuller exchange.
            .and_then(|b| SyncState::decode(&b).ok()))
    }

    fn generate(
        &mut self,
        doc: &DocId,
        state: &mut SyncState,
    ) -> Result<Option<Vec<u8>>, DocSetError> {
        Ok(self.get(doc)?.doc.generate_sync_message(state))
    }

    fn receive(
        &mut self,
        doc: &DocId,
        state: &mut SyncState,
        message: &[u8],
    ) -> Result<bool, DocSetError> {
        if matches!(doc, DocId::Journal(_)) {
            self.roster()?;
        }
        self.load(doc)?;
        let Some(l) = self.cache.get_mut(doc) else {
            return Err(DocSetError::NotFound(doc.clone()));
        };
        let verdict = match (&mut l.doc, &self.roster) {
            (Document::Journal(j), Some(roster)) => match j.receive_checked(state, message, roster)
            {
                Ok(accepted) => Ok(accepted),
                Err(ReceiveError::Refused(v)) => Err(v),
                Err(ReceiveError::Doc(e)) => return Err(e.into()),
                Err(e) => return Err(store_err(e)),
            },
            (Document::Journal(_), None) => return Err(DocSetError::NotFound(DocId::Roster)),
            // The roster and the setting are the server's: any change to them is refused.
            (doc, _) => {
                let before = doc.heads();
                doc.receive_sync_message(state, message)?;
                if doc.heads() == before {
                    return Ok(false);
                }
                Err(Violation::ServerDocument {
                    doc: if matches!(doc, Document::Roster(_)) {
                        "roster"
                    } else {
                        "setting"
                    },
                })
            }
        };
        match verdict {
            Ok(accepted) => {
                self.media
                    .entry(doc.clone())
                    .or_default()
                    .extend(accepted.media.iter().map(sprig_core::Sha256::to_hex));
                Ok(accepted.ops > 0)
            }
            Err(violation) => {
                // This copy now holds what the device may not write: it goes, and with it
                // everything of this session for the document, held for review instead.
                let held = match self.cache.remove(doc) {
                    Some(mut l) => l.doc.changes_since(&l.base),
                    None => Vec::new(),
                };
                tracing::warn!(device = %self.device, %doc, rule = violation.rule(), "change refused");
                self.refusal = Some(Refusal {
                    doc: doc.clone(),
                    violation: violation.clone(),
                    held,
                });
                Err(DocSetError::Refused(violation))
            }
        }
    }

    fn snapshot(&mut self, doc: &DocId) -> Result<Vec<u8>, DocSetError> {
        if let Some(l) = self.cache.get_mut(doc) {
            // Loaded (and maybe changed) in this session: save this copy. `save` moves the
            // incremental cursor: keep what it would skip for the publish.
            let pending = l.doc.save_incremental();
            if !pending.is_empty() {
                l.pending.push(pending);
            }
            return Ok(l.doc.save());
        }
        // The stored bytes as they are: snapshot and chunks concatenated load as the
        // document, so nothing is loaded or re-saved here.
        Ok(self
            .store
            .load_doc(doc)
            .map_err(store_err)?
            .ok_or_else(|| DocSetError::NotFound(doc.clone()))?
            .into_bytes())
    }

    fn replace(&mut self, doc: &DocId, _epoch: u64, _snapshot: &[u8]) -> Result<(), DocSetError> {
        Err(DocSetError::Refused(match doc {
            DocId::Roster => Violation::ServerDocument { doc: "roster" },
            DocId::Setting => Violation::ServerDocument { doc: "setting" },
            DocId::Journal(_) => Violation::RootField {
                key: "epoch".into(),
            },
        }))
    }

    fn commit(&mut self, sync_states: &[(&DocId, &SyncState)]) -> Result<(), DocSetError> {
        // Held until the session converges (see `publish`): the device's next message may
        // still break a rule, and then none of the session may be kept.
        for (doc, state) in sync_states {
            self.states.insert((*doc).clone(), state.encode());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sprig_core::{Journal, SettingDoc, Timestamp};
    use sprig_testkit::Fixture;

    use super::*;
    use crate::store::SqliteStore;

    fn t(n: i64) -> Timestamp {
        Timestamp(1_700_000_000_000 + n * 60_000)
    }

    /// A server store holding the roster, the setting and `journal`, as `admin` creates them.
    fn store_with(fx: &Fixture, journal: &mut Journal) -> Arc<dyn ServerStore> {
        let s = SqliteStore::open_in_memory().unwrap();
        s.create_doc(&DocId::Roster, 0, &fx.roster.clone().save())
            .unwrap();
        s.create_doc(&DocId::Setting, 0, &SettingDoc::new("Acorns").save())
            .unwrap();
        s.create_doc(
            &DocId::Journal(journal.child().clone()),
            journal.epoch(),
            &journal.save(),
        )
        .unwrap();
        Arc::new(s)
    }

    #[test]
    fn the_read_cache_keeps_a_journals_entries_while_the_stored_journal_is_unchanged() {
        let fx = Fixture::new(2);
        let mut j = fx.journal(0);
        fx.observe(&mut j, "First", t(1));
        let store = store_with(&fx, &mut j);
        let s = store.as_ref();
        let child = j.child().clone();
        let cache = ReadCache::default();
        // Heads unknown (never written since created): read afresh, and the heads of what
        // was read recorded, so the next read finds them ...
        assert_eq!(stored_heads(s, &DocId::Journal(child.clone())), None);
        let a = cache.entries(s, &child).unwrap();
        assert!(stored_heads(s, &DocId::Journal(child.clone())).is_some());
        assert!(Arc::ptr_eq(&a, &cache.entries(s, &child).unwrap()));
        // A write moves the heads: the next read shows it, and keeps it ...
        let write = |text: &'static str, at| {
            edit_journal(s, &child, |j| {
                fx.observe(j, text, t(at));
                Ok::<_, DocStoreError>(())
            })
            .unwrap();
        };
        write("Second", 2);
        let b = cache.entries(s, &child).unwrap();
        assert_eq!(b.len(), 2);
        assert!(Arc::ptr_eq(&b, &cache.entries(s, &child).unwrap()));
        // ... until the next write, which the next read shows.
        write("Third", 3);
        assert_eq!(cache.entries(s, &child).unwrap().len(), 3);
    }

    /// Runs the Automerge sync protocol for `doc` between a session and a device's copy until
    /// both are quiet, then commits the session.
    fn sync_from_device(docs: &mut DeviceDocs, doc: &DocId, device: &mut Journal) {
        let (mut ours, mut theirs) = (SyncState::new(), SyncState::new());
        for _ in 0..20 {
            let to_server = device.generate_sync_message(&mut theirs);
            if let Some(m) = &to_server {
                docs.receive(doc, &mut ours, m).unwrap();
            }
            let to_device = docs.generate(doc, &mut ours).unwrap();
            if let Some(m) = &to_device {
                device.receive_sync_message(&mut theirs, m).unwrap();
            }
            if to_server.is_none() && to_device.is_none() {
                break;
            }
        }
        docs.commit(&[(doc, &ours)]).unwrap();
        docs.publish(&[]).unwrap();
    }

    fn listed_heads(docs: &mut DeviceDocs, doc: &DocId) -> Heads {
        docs.list()
            .unwrap()
            .into_iter()
            .find(|d| &d.doc == doc)
            .unwrap()
            .heads
    }

    fn stored_heads(store: &dyn ServerStore, doc: &DocId) -> Option<Heads> {
        store
            .list_doc_heads()
            .unwrap()
            .into_iter()
            .find(|d| &d.doc == doc)
            .unwrap()
            .heads
    }

    #[test]
    fn listing_reads_stored_heads_and_loads_only_documents_whose_heads_are_unknown() {
        let fx = Fixture::new(1);
        let mut journal = fx.journal(0);
        fx.observe(&mut journal, "Built a tower", t(1));
        let store = store_with(&fx, &mut journal);
        let doc = DocId::Journal(journal.child().clone());
        // Just created: heads unknown; the first listing loads each document once and
        // records them.
        assert_eq!(stored_heads(store.as_ref(), &doc), None);
        let mut first = DeviceDocs::new(store.clone(), "tablet-1");
        let listed = first.list().unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(listed_heads(&mut first, &doc), journal.heads());
        assert_eq!(stored_heads(store.as_ref(), &doc), Some(journal.heads()));

        // From now on listing reads the store only: with the document's bytes made unloadable
        // (but heads recorded), a new session still lists it, and only a sync message needs
        // (and fails) to load it.
        let stored = store.load_doc(&doc).unwrap().unwrap();
        store
            .compact_doc(
                &doc,
                b"not automerge",
                stored.last_seq,
                stored.version,
                &journal.heads(),
            )
            .unwrap();
        let mut second = DeviceDocs::new(store.clone(), "tablet-2");
        assert_eq!(listed_heads(&mut second, &doc), journal.heads());
        assert!(second.cache.is_empty(), "listing loaded a document");
        assert!(second.generate(&doc, &mut SyncState::new()).is_err());
    }

    #[test]
    fn a_missing_document_is_sent_as_its_stored_bytes_without_loading() {
        let fx = Fixture::new(1);
        let mut journal = fx.journal(0);
        fx.observe(&mut journal, "first", t(1));
        let store = store_with(&fx, &mut journal);
        let doc = DocId::Journal(journal.child().clone());
        // A device adds a change: stored as a chunk after the snapshot.
        let mut device = Journal::load(&journal.save()).unwrap();
        fx.observe(&mut device, "second", t(2));
        sync_from_device(
            &mut DeviceDocs::new(store.clone(), "tablet-1"),
            &doc,
            &mut device,
        );
        let stored = store.load_doc(&doc).unwrap().unwrap();
        assert_eq!(stored.chunks.len(), 1);

        let mut docs = DeviceDocs::new(store.clone(), "tablet-2");
        let bytes = docs.snapshot(&doc).unwrap();
        assert!(docs.cache.is_empty(), "the snapshot was made by loading");
        assert_eq!(bytes, stored.into_bytes());
        let mut received = Journal::load(&bytes).unwrap();
        assert_eq!(received.heads(), device.heads());
        assert_eq!(received.entries(), device.entries());
    }

    #[test]
    fn two_sessions_writing_one_journal_leave_heads_that_cover_both() {
        let fx = Fixture::new(1);
        let mut journal = fx.journal(0);
        fx.observe(&mut journal, "shared", t(1));
        let store = store_with(&fx, &mut journal);
        let doc = DocId::Journal(journal.child().clone());
        let mut a = DeviceDocs::new(store.clone(), "tablet-a");
        let mut b = DeviceDocs::new(store.clone(), "tablet-b");
        // Both sessions hold the journal before either commits.
        a.generate(&doc, &mut SyncState::new()).unwrap();
        b.generate(&doc, &mut SyncState::new()).unwrap();
        let mut dev_a = Journal::load(&journal.save()).unwrap();
        let mut dev_b = Journal::load(&journal.save()).unwrap();
        let from_a = fx.observe(&mut dev_a, "from tablet a", t(2));
        let from_b = fx.observe(&mut dev_b, "from tablet b", t(3));
        sync_from_device(&mut a, &doc, &mut dev_a);
        assert_eq!(stored_heads(store.as_ref(), &doc), Some(dev_a.heads()));
        // B's copy lacks A's change: its heads would hide it, so they are not recorded.
        sync_from_device(&mut b, &doc, &mut dev_b);
        assert_eq!(stored_heads(store.as_ref(), &doc), None);

        let mut merged =
            Journal::load(&store.load_doc(&doc).unwrap().unwrap().into_bytes()).unwrap();
        assert!(merged.entry(&from_a).is_some() && merged.entry(&from_b).is_some());
        let mut next = DeviceDocs::new(store.clone(), "tablet-c");
        assert_eq!(listed_heads(&mut next, &doc), merged.heads());
        assert_eq!(stored_heads(store.as_ref(), &doc), Some(merged.heads()));
    }

    #[test]
    fn compaction_records_the_heads_of_the_snapshot() {
        let fx = Fixture::new(1);
        let mut journal = fx.journal(0);
        let store = store_with(&fx, &mut journal);
        let doc = DocId::Journal(journal.child().clone());
        let mut device = Journal::load(&journal.save()).unwrap();
        fx.observe(&mut device, "one", t(1));
        let mut a = DeviceDocs::new(store.clone(), "tablet-a");
        a.generate(&doc, &mut SyncState::new()).unwrap();
        let mut b = DeviceDocs::new(store.clone(), "tablet-b");
        b.generate(&doc, &mut SyncState::new()).unwrap();
        sync_from_device(&mut a, &doc, &mut device);
        fx.observe(&mut device, "two", t(2));
        sync_from_device(&mut b, &doc, &mut device);
        assert_eq!(stored_heads(store.as_ref(), &doc), None);
        compact(store.as_ref(), &doc).unwrap();
        let stored = store.load_doc(&doc).unwrap().unwrap();
        assert!(stored.chunks.is_empty());
        assert_eq!(stored.heads, Some(device.heads()));
    }
}
