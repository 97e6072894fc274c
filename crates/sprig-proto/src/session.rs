//! The sync session state machine, shared by client and server: frames in, frames out.
//!
//! ```text
//! client                                   server
//!   Hello ─────────────────────────────────►  (caller checks the device, may answer
//!                                              Revoked or Wipe instead and close)
//!        ◄──── Welcome, Replace*, Sync*, Done   first turn
//!   Sync*, Done ──────────────────────────►
//!        ◄──────────────────── Sync*, Done
//!   …  until two consecutive turns carry no Sync: the documents are in sync
//!        ◄──────────────────── Lease | Wipe     the caller's closing message
//! ```
//! The client is finished only when the closing message arrives: a [`Message::Lease`] after a
//! completed sync, or [`Message::Wipe`] (a retired device, or a wipe command) or
//! [`Message::Revoked`] at any point after the hello. After a wipe the device answers
//! [`Message::WipeDone`] on the same connection if it can (the caller encodes it).
//! A turn holds at most one sync message per document. A document takes part when the two
//! sides' heads (from the hello and the welcome) differ or when the peer syncs it; equal
//! heads mean nothing to do, so a session between converged replicas is four small frames and
//! the lease.
//! Each side commits what it received before it answers, so an answer never acknowledges
//! changes that are not yet durable.

use std::collections::{BTreeMap, BTreeSet};

use sprig_core::{Heads, SyncState};

use crate::doc_id::{DocId, DocSummary};
use crate::docset::DocSet;
use crate::error::ProtoError;
use crate::frame::{Limits, decode, encode_within};
use crate::message::{Hello, Lease, Message, PinFailure, Unsynced, Welcome};

/// What a session did, for the device register, the audit log and the CLI.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionReport {
    /// Documents whose local copy changed by sync messages from the peer.
    pub changed: BTreeSet<DocId>,
    /// Documents replaced by a snapshot (installed on the device, sent by the server).
    pub replaced: Vec<DocId>,
    /// Documents the client holds that the server does not list (the device should erase
    /// them; the server ignores them).
    pub not_listed: Vec<DocId>,
    /// Turns this side took.
    pub turns: u32,
    /// Frames sent.
    pub frames_sent: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Client: the server's clock from the welcome.
    pub server_time_ms: Option<i64>,
    /// Client: the server revoked this device, with its reason.
    pub revoked: Option<String>,
    /// Client: the server asked this device to wipe itself.
    pub wipe: bool,
    /// Client: the welcome said the manager has asked to retire this device.
    pub retire: bool,
    /// Client: the lease the server sent, if any (verify its signature before trusting it).
    pub lease: Option<Lease>,
}

#[derive(Debug, Default)]
struct DocEntry {
    epoch: u64,
    /// This side holds a copy (a client may wait for the server's replace).
    held: bool,
    /// Takes part in sync turns.
    active: bool,
    replaced: bool,
    state: Option<SyncState>,
    sent: u32,
    received: u32,
    got_this_turn: bool,
}

/// The part of a session both roles share: per-document sync over turns.
#[derive(Debug)]
struct Engine {
    limits: Limits,
    docs: BTreeMap<DocId, DocEntry>,
    /// Sync states changed since the last commit.
    dirty: BTreeSet<DocId>,
    /// The peer's current turn has carried a sync message.
    peer_turn_busy: bool,
    /// Our last turn carried no sync message (the opening hello counts as busy).
    my_last_turn_empty: bool,
    finished: bool,
    /// Bytes of sync messages received in this session.
    bytes_in: u64,
    report: SessionReport,
}

impl Engine {
    fn new(limits: Limits) -> Engine {
        Engine {
            limits,
            docs: BTreeMap::new(),
            dirty: BTreeSet::new(),
            peer_turn_busy: false,
            my_last_turn_empty: false,
            finished: false,
            bytes_in: 0,
            report: SessionReport::default(),
        }
    }

    fn state<'e, D: DocSet + ?Sized>(
        docs: &mut D,
        doc: &DocId,
        entry: &'e mut DocEntry,
    ) -> Result<&'e mut SyncState, ProtoError> {
        if entry.state.is_none() {
            let loaded = docs.sync_state(doc).map_err(|e| ProtoError::docs(doc, e))?;
            entry.state = Some(loaded.unwrap_or_default());
        }
        Ok(entry.state.get_or_insert_with(SyncState::new))
    }

    fn reset_state(&mut self, doc: &DocId) {
        if let Some(e) = self.docs.get_mut(doc) {
            e.state = Some(SyncState::new());
            self.dirty.insert(doc.clone());
        }
    }

    fn on_sync<D: DocSet + ?Sized>(
        &mut self,
        docs: &mut D,
        doc: DocId,
        data: &[u8],
    ) -> Result<(), ProtoError> {
        let limit = self.limits.max_rounds_per_doc;
        let Some(entry) = self.docs.get_mut(&doc) else {
            return Err(ProtoError::UnknownDoc { doc });
        };
        if !entry.held {
            return Err(ProtoError::Unexpected {
                got: "sync",
                state: "the document has not been sent to this device yet",
            });
        }
        if entry.got_this_turn {
            return Err(ProtoError::Unexpected {
                got: "sync",
                state: "a turn may carry only one sync message per document",
            });
        }
        entry.got_this_turn = true;
        entry.received += 1;
        if entry.received > limit {
            return Err(ProtoError::TooManyRounds { doc, limit });
        }
        self.bytes_in = self.bytes_in.saturating_add(data.len() as u64);
        if self.bytes_in > self.limits.max_session_bytes {
            return Err(ProtoError::SessionLimit {
                what: "bytes of changes",
                limit: self.limits.max_session_bytes,
            });
        }
        let state = Self::state(docs, &doc, entry)?;
        let changed = docs
            .receive(&doc, state, data)
            .map_err(|e| ProtoError::docs(&doc, e))?;
        entry.active = true;
        self.peer_turn_busy = true;
        if changed {
            self.report.changed.insert(doc.clone());
        }
        self.dirty.insert(doc);
        Ok(())
    }

    fn commit<D: DocSet + ?Sized>(&mut self, docs: &mut D) -> Result<(), ProtoError> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let states: Vec<(&DocId, &SyncState)> = self
            .dirty
            .iter()
            .filter_map(|d| Some((d, self.docs.get(d)?.state.as_ref()?)))
            .collect();
        docs.commit(&states)
            .map_err(|source| ProtoError::Docs { doc: None, source })?;
        self.dirty.clear();
        Ok(())
    }

    /// The peer ended its turn: commit, then take ours (or finish).
    fn on_done<D: DocSet + ?Sized>(&mut self, docs: &mut D) -> Result<Vec<Vec<u8>>, ProtoError> {
        let peer_empty = !self.peer_turn_busy;
        self.peer_turn_busy = false;
        for e in self.docs.values_mut() {
            e.got_this_turn = false;
        }
        self.commit(docs)?;
        if peer_empty && self.my_last_turn_empty {
            self.finished = true;
            return Ok(Vec::new());
        }
        self.take_turn(docs, peer_empty)
    }

    /// Our turn: a sync message for every active document that has one, then done.
    fn take_turn<D: DocSet + ?Sized>(
        &mut self,
        docs: &mut D,
        peer_empty: bool,
    ) -> Result<Vec<Vec<u8>>, ProtoError> {
        let limit = self.limits.max_rounds_per_doc;
        let mut out = Vec::new();
        for (doc, entry) in &mut self.docs {
            if !(entry.active && entry.held) {
                continue;
            }
            let state = Self::state(docs, doc, entry)?;
            let Some(data) = docs
                .generate(doc, state)
                .map_err(|e| ProtoError::docs(doc, e))?
            else {
                continue;
            };
            entry.sent += 1;
            if entry.sent > limit {
                return Err(ProtoError::TooManyRounds {
                    doc: doc.clone(),
                    limit,
                });
            }
            out.push(encode_within(
                &Message::Sync {
                    doc: doc.clone(),
                    data,
                },
                &self.limits,
            )?);
        }
        self.my_last_turn_empty = out.is_empty();
        self.finished = self.my_last_turn_empty && peer_empty;
        self.report.turns += 1;
        if self.report.turns > self.limits.max_turns {
            return Err(ProtoError::SessionLimit {
                what: "turns",
                limit: u64::from(self.limits.max_turns),
            });
        }
        out.push(encode_within(&Message::Done, &self.limits)?);
        Ok(out)
    }

    fn count_in(&mut self, frame: &[u8]) {
        self.report.frames_received += 1;
        self.report.bytes_received += frame.len() as u64;
    }

    fn count_out(&mut self, frames: &[Vec<u8>]) {
        self.report.frames_sent += frames.len() as u64;
        self.report.bytes_sent += frames.iter().map(|f| f.len() as u64).sum::<u64>();
    }
}

/// Who the device is, for its hello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// The device's id.
    pub device_id: String,
    /// The app's version.
    pub app_version: String,
    /// Work not yet handed to the server.
    pub unsynced: Unsynced,
    /// Wrong-PIN attempts since the last successful sync.
    pub pin_failures: Vec<PinFailure>,
    /// The device is locked now (PIN lock-out or expired lease).
    pub locked: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum ClientState {
    New,
    AwaitWelcome,
    /// The welcome has arrived; the server's first turn (replaces, syncs) is in progress.
    FirstTurn,
    Syncing,
    /// The documents are in sync; the server's closing lease (or wipe) is due.
    AwaitClose,
    Finished,
    Failed,
}

/// The device's side of a sync session.
///
/// ```text
/// let hello = session.start(&mut docs)?;              // send it
/// while !session.is_finished() {
///     let out = session.receive(&mut docs, &frame)?;  // each frame from the server
///     // send every frame in `out`
/// }
/// ```
#[derive(Debug)]
pub struct ClientSession {
    info: ClientInfo,
    state: ClientState,
    held: BTreeMap<DocId, DocSummary>,
    engine: Engine,
}

impl ClientSession {
    /// A session that has not started.
    #[must_use]
    pub fn new(info: ClientInfo, limits: Limits) -> ClientSession {
        ClientSession {
            info,
            state: ClientState::New,
            held: BTreeMap::new(),
            engine: Engine::new(limits),
        }
    }

    /// The hello frame, listing every document in `docs`.
    ///
    /// # Errors
    /// [`ProtoError::Unexpected`] when already started, [`ProtoError::TooManyDocs`],
    /// [`ProtoError::Docs`].
    pub fn start<D: DocSet + ?Sized>(&mut self, docs: &mut D) -> Result<Vec<u8>, ProtoError> {
        if self.state != ClientState::New {
            return Err(ProtoError::Unexpected {
                got: "hello",
                state: "the session has already started",
            });
        }
        let listed = docs
            .list()
            .map_err(|source| ProtoError::Docs { doc: None, source })?;
        if listed.len() > self.engine.limits.max_docs {
            self.state = ClientState::Failed;
            return Err(ProtoError::TooManyDocs {
                what: "hello",
                count: listed.len() as u64,
                limit: self.engine.limits.max_docs as u64,
            });
        }
        self.held = listed.iter().map(|d| (d.doc.clone(), d.clone())).collect();
        let hello = Message::Hello(Hello {
            device_id: self.info.device_id.clone(),
            app_version: self.info.app_version.clone(),
            docs: self.held.values().cloned().collect(),
            unsynced: self.info.unsynced,
            pin_failures: self.info.pin_failures.clone(),
            locked: self.info.locked,
        });
        let frame = encode_within(&hello, &self.engine.limits).inspect_err(|_| {
            self.state = ClientState::Failed;
        })?;
        self.engine.count_out(std::slice::from_ref(&frame));
        self.state = ClientState::AwaitWelcome;
        Ok(frame)
    }

    /// Handles one frame from the server; returns the frames to send back (often none).
    /// After an error the session is over: send [`ProtoError::error_frame`] and close.
    ///
    /// # Errors
    /// Any [`ProtoError`]: bad frames, out-of-order messages, unknown documents, the
    /// server's own error, store failures.
    pub fn receive<D: DocSet + ?Sized>(
        &mut self,
        docs: &mut D,
        frame: &[u8],
    ) -> Result<Vec<Vec<u8>>, ProtoError> {
        if matches!(self.state, ClientState::Finished | ClientState::Failed) {
            return Err(ProtoError::Closed);
        }
        self.engine.count_in(frame);
        match self.handle(docs, frame) {
            Ok(out) => {
                self.engine.count_out(&out);
                Ok(out)
            }
            Err(e) => {
                self.state = ClientState::Failed;
                Err(e)
            }
        }
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            ClientState::New => "the client has not sent its hello",
            ClientState::AwaitWelcome => "the client is waiting for the welcome",
            ClientState::FirstTurn => "the server's first turn is in progress",
            ClientState::Syncing => "documents are syncing",
            ClientState::AwaitClose => "the documents are in sync and the lease is due",
            ClientState::Finished | ClientState::Failed => "the session is over",
        }
    }

    fn handle<D: DocSet + ?Sized>(
        &mut self,
        docs: &mut D,
        frame: &[u8],
    ) -> Result<Vec<Vec<u8>>, ProtoError> {
        let msg = decode(frame, &self.engine.limits)?;
        let started = self.state != ClientState::New;
        match msg {
            Message::Error { code, message } => Err(ProtoError::Peer { code, message }),
            Message::Revoked { reason } if started => {
                self.engine.report.revoked = Some(reason);
                self.state = ClientState::Finished;
                Ok(Vec::new())
            }
            Message::Wipe if started => {
                self.engine.report.wipe = true;
                self.state = ClientState::Finished;
                Ok(Vec::new())
            }
            Message::Lease(lease) if self.state == ClientState::AwaitClose => {
                if lease.device_id != self.info.device_id {
                    return Err(ProtoError::Malformed {
                        reason: "the lease is for another device".into(),
                    });
                }
                self.engine.report.lease = Some(lease);
                self.state = ClientState::Finished;
                Ok(Vec::new())
            }
            Message::Welcome(w) if self.state == ClientState::AwaitWelcome => {
                self.on_welcome(w);
                Ok(Vec::new())
            }
            Message::Replace {
                doc,
                epoch,
                snapshot,
            } if self.state == ClientState::FirstTurn => {
                self.on_replace(docs, doc, epoch, &snapshot)?;
                Ok(Vec::new())
            }
            Message::Sync { doc, data }
                if matches!(self.state, ClientState::FirstTurn | ClientState::Syncing) =>
            {
                self.engine.on_sync(docs, doc, &data)?;
                Ok(Vec::new())
            }
            Message::Done
                if matches!(self.state, ClientState::FirstTurn | ClientState::Syncing) =>
            {
                if self.state == ClientState::FirstTurn {
                    if let Some((doc, _)) = self.engine.docs.iter().find(|(_, e)| !e.held) {
                        return Err(ProtoError::MissingDoc { doc: doc.clone() });
                    }
                    self.state = ClientState::Syncing;
                }
                let out = self.engine.on_done(docs)?;
                if self.engine.finished {
                    self.state = ClientState::AwaitClose;
                }
                Ok(out)
            }
            other => Err(ProtoError::Unexpected {
                got: other.kind().name(),
                state: self.state_name(),
            }),
        }
    }

    fn on_welcome(&mut self, w: Welcome) {
        self.engine.report.server_time_ms = Some(w.server_time_ms);
        self.engine.report.retire = w.retire;
        let mut held = std::mem::take(&mut self.held);
        for d in w.docs {
            let mine = held.remove(&d.doc);
            let same_epoch = mine.as_ref().is_some_and(|m| m.epoch == d.epoch);
            let active = same_epoch && mine.is_some_and(|m| m.heads != d.heads);
            self.engine.docs.insert(
                d.doc,
                DocEntry {
                    epoch: d.epoch,
                    held: same_epoch,
                    active,
                    ..DocEntry::default()
                },
            );
        }
        self.engine.report.not_listed = held.into_keys().collect();
        self.state = ClientState::FirstTurn;
    }

    fn on_replace<D: DocSet + ?Sized>(
        &mut self,
        docs: &mut D,
        doc: DocId,
        epoch: u64,
        snapshot: &[u8],
    ) -> Result<(), ProtoError> {
        let Some(entry) = self.engine.docs.get_mut(&doc) else {
            return Err(ProtoError::UnknownDoc { doc });
        };
        if entry.epoch != epoch {
            return Err(ProtoError::Malformed {
                reason: format!(
                    "the replace of {doc} is epoch {epoch} but the welcome said {}",
                    entry.epoch
                ),
            });
        }
        if entry.replaced {
            return Err(ProtoError::Unexpected {
                got: "replace",
                state: "the document was already replaced in this session",
            });
        }
        docs.replace(&doc, epoch, snapshot)
            .map_err(|e| ProtoError::docs(&doc, e))?;
        entry.held = true;
        entry.replaced = true;
        // The snapshot is the server's version; nothing to sync unless either side changes it.
        entry.active = false;
        self.engine.reset_state(&doc);
        self.engine.report.replaced.push(doc);
        Ok(())
    }

    /// Whether the session is over: converged and closed by the server's lease, or ended by
    /// revocation or wipe. A failed session is not finished.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.state == ClientState::Finished
    }

    /// Whether the documents are in sync (the last turns carried nothing), whether or not the
    /// closing lease has arrived yet.
    #[must_use]
    pub fn is_converged(&self) -> bool {
        self.engine.finished
    }

    /// What the session did so far.
    #[must_use]
    pub fn report(&self) -> &SessionReport {
        &self.engine.report
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ServerState {
    AwaitHello,
    /// The hello has arrived; the caller decides, then calls `welcome`.
    AwaitWelcome,
    Syncing,
    Finished,
    Failed,
}

/// The server's side of a sync session.
///
/// ```text
/// session.receive(&mut docs, &first_frame)?;        // the hello
/// let hello = session.hello().unwrap();              // check the device, record its counts
/// send(session.welcome(&mut docs, now_ms)?);         // or send Revoked / Wipe and close
/// while !session.is_finished() {
///     send(session.receive(&mut docs, &frame)?);
/// }
/// ```
#[derive(Debug)]
pub struct ServerSession {
    state: ServerState,
    hello: Option<Hello>,
    retire: bool,
    /// Documents to send whole even when the device holds them at the same epoch.
    replace: BTreeSet<DocId>,
    engine: Engine,
}

impl ServerSession {
    /// A session waiting for the device's hello.
    #[must_use]
    pub fn new(limits: Limits) -> ServerSession {
        ServerSession {
            state: ServerState::AwaitHello,
            hello: None,
            retire: false,
            replace: BTreeSet::new(),
            engine: Engine::new(limits),
        }
    }

    /// The device's hello, once received.
    #[must_use]
    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// Marks the welcome with `retire` (the manager has asked to retire this device). Call it
    /// before [`Self::welcome`].
    pub fn set_retire(&mut self, retire: bool) {
        self.retire = retire;
    }

    /// Sends these documents whole in the welcome's turn, replacing the device's copies even
    /// when it holds them at the same epoch (and with them any changes of its own not yet
    /// accepted): after a quarantine, the device goes on from the server's copy. Call it
    /// before [`Self::welcome`].
    pub fn set_replace(&mut self, docs: BTreeSet<DocId>) {
        self.replace = docs;
    }

    /// Handles one frame from the device; returns the frames to send back (often none).
    /// After the hello it returns nothing: the caller checks [`Self::hello`] and then calls
    /// [`Self::welcome`]. After an error the session is over: send
    /// [`ProtoError::error_frame`] and close.
    ///
    /// # Errors
    /// Any [`ProtoError`]: bad frames, out-of-order messages (a sync before the hello, a
    /// second hello), unknown documents, the device's own error, store failures.
    pub fn receive<D: DocSet + ?Sized>(
        &mut self,
        docs: &mut D,
        frame: &[u8],
    ) -> Result<Vec<Vec<u8>>, ProtoError> {
        if matches!(self.state, ServerState::Finished | ServerState::Failed) {
            return Err(ProtoError::Closed);
        }
        self.engine.count_in(frame);
        match self.handle(docs, frame) {
            Ok(out) => {
                self.engine.count_out(&out);
                Ok(out)
            }
            Err(e) => {
                self.state = ServerState::Failed;
                Err(e)
            }
        }
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            ServerState::AwaitHello => "the server is waiting for the hello",
            ServerState::AwaitWelcome => "the server has not sent its welcome",
            ServerState::Syncing => "documents are syncing",
            ServerState::Finished | ServerState::Failed => "the session is over",
        }
    }

    fn handle<D: DocSet + ?Sized>(
        &mut self,
        docs: &mut D,
        frame: &[u8],
    ) -> Result<Vec<Vec<u8>>, ProtoError> {
        let msg = decode(frame, &self.engine.limits)?;
        match msg {
            Message::Error { code, message } => Err(ProtoError::Peer { code, message }),
            Message::Hello(h) if self.state == ServerState::AwaitHello => {
                if h.pin_failures.len() > self.engine.limits.max_pin_failures {
                    return Err(ProtoError::SessionLimit {
                        what: "wrong-PIN records in one hello",
                        limit: self.engine.limits.max_pin_failures as u64,
                    });
                }
                self.hello = Some(h);
                self.state = ServerState::AwaitWelcome;
                Ok(Vec::new())
            }
            Message::Sync { doc, data } if self.state == ServerState::Syncing => {
                self.engine.on_sync(docs, doc, &data)?;
                Ok(Vec::new())
            }
            Message::Done if self.state == ServerState::Syncing => {
                let out = self.engine.on_done(docs)?;
                if self.engine.finished {
                    self.state = ServerState::Finished;
                }
                Ok(out)
            }
            other => Err(ProtoError::Unexpected {
                got: other.kind().name(),
                state: self.state_name(),
            }),
        }
    }

    /// The server's first turn: the welcome listing every document of `docs`, a snapshot of
    /// each the device lacks or holds at another epoch, and sync messages for those whose
    /// heads differ.
    ///
    /// # Errors
    /// [`ProtoError::Unexpected`] before the hello or when already welcomed,
    /// [`ProtoError::TooManyDocs`], [`ProtoError::TooLarge`] for a snapshot over the frame
    /// limit, [`ProtoError::Docs`].
    pub fn welcome<D: DocSet + ?Sized>(
        &mut self,
        docs: &mut D,
        server_time_ms: i64,
    ) -> Result<Vec<Vec<u8>>, ProtoError> {
        if self.state != ServerState::AwaitWelcome {
            return Err(ProtoError::Unexpected {
                got: "welcome",
                state: self.state_name(),
            });
        }
        match self.first_turn(docs, server_time_ms) {
            Ok(out) => {
                self.engine.count_out(&out);
                self.state = ServerState::Syncing;
                Ok(out)
            }
            Err(e) => {
                self.state = ServerState::Failed;
                Err(e)
            }
        }
    }

    fn first_turn<D: DocSet + ?Sized>(
        &mut self,
        docs: &mut D,
        server_time_ms: i64,
    ) -> Result<Vec<Vec<u8>>, ProtoError> {
        let mut listed = docs
            .list()
            .map_err(|source| ProtoError::Docs { doc: None, source })?;
        listed.sort_by(|a, b| a.doc.cmp(&b.doc));
        listed.dedup_by(|a, b| a.doc == b.doc);
        if listed.len() > self.engine.limits.max_docs {
            return Err(ProtoError::TooManyDocs {
                what: "welcome",
                count: listed.len() as u64,
                limit: self.engine.limits.max_docs as u64,
            });
        }
        let mut theirs: BTreeMap<DocId, (u64, Heads)> = self
            .hello
            .iter()
            .flat_map(|h| &h.docs)
            .map(|d| (d.doc.clone(), (d.epoch, d.heads.clone())))
            .collect();
        let mut to_replace = Vec::new();
        for d in &listed {
            let entry = match theirs.remove(&d.doc) {
                Some((epoch, heads)) if epoch == d.epoch && !self.replace.contains(&d.doc) => {
                    DocEntry {
                        epoch: d.epoch,
                        held: true,
                        active: heads != d.heads,
                        ..DocEntry::default()
                    }
                }
                _ => {
                    to_replace.push((d.doc.clone(), d.epoch));
                    DocEntry {
                        epoch: d.epoch,
                        held: true,
                        replaced: true,
                        ..DocEntry::default()
                    }
                }
            };
            self.engine.docs.insert(d.doc.clone(), entry);
        }
        self.engine.report.not_listed = theirs.into_keys().collect();
        let limits = self.engine.limits.clone();
        let mut out = vec![encode_within(
            &Message::Welcome(Welcome {
                server_time_ms,
                docs: listed,
                retire: self.retire,
            }),
            &limits,
        )?];
        for (doc, epoch) in to_replace {
            let snapshot = docs.snapshot(&doc).map_err(|e| ProtoError::docs(&doc, e))?;
            out.push(encode_within(
                &Message::Replace {
                    doc: doc.clone(),
                    epoch,
                    snapshot,
                },
                &limits,
            )?);
            // Whatever was known of the device's old copy no longer holds.
            self.engine.reset_state(&doc);
            self.engine.report.replaced.push(doc);
        }
        self.engine.commit(docs)?;
        out.extend(self.engine.take_turn(docs, false)?);
        Ok(out)
    }

    /// Whether the session converged: the caller now sends its closing message (a
    /// [`Message::Lease`], or [`Message::Wipe`] for a retired device) and closes.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.state == ServerState::Finished
    }

    /// What the session did so far.
    #[must_use]
    pub fn report(&self) -> &SessionReport {
        &self.engine.report
    }
}
