//! `GET /api/v1/events`: server-sent events that tell an open portal page that the journal of
//! one of the parent's children changed (`event: journal`, `data: {"child": ID}`), so it loads
//! that journal again. The first event, `ready`, says the stream listens.
//!
//! The stream hooks into the setting's change feed ([`crate::http::changes::Changes`]), the
//! one that wakes the tablets' watch connections: a tablet's sync announces what it stored at
//! once, and anything written elsewhere (the portal's own replies and contributions, an admin
//! command, another process or replica over the same database) is found by the feed's poll of
//! the stored document versions, once a second while anyone listens. An event carries a child
//! id only, and only for the parent's own linked children whose journal is open to them; the
//! page asks the API for what changed, which decides what the parent may see.
//!
//! A stream ends when its session does (checked every [`RECHECK`]), and each session may hold
//! at most [`MAX_STREAMS_PER_SESSION`] at once (a page per tab, not a flood).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use sprig_core::{ChildId, Consent, ParentId, Roster};
use sprig_proto::DocId;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use super::PortalState;
use super::api::{ErrorBody, agreement_accepted, agreement_required, run};
use super::session::{SignedIn, id_hash, signed_out};
use crate::admin::now_ms;
use crate::docs::{AnyDoc, load_doc};
use crate::http::changes::Notice;
use crate::http::{ApiError, AppState};

/// Open event streams one session may hold.
pub(crate) const MAX_STREAMS_PER_SESSION: usize = 4;
/// How often a stream checks that its session still stands and which children are linked.
const RECHECK: Duration = Duration::from_secs(30);
/// A comment this often keeps proxies from closing an idle stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Open streams per session (by the hash of its id).
#[derive(Debug, Default)]
pub(crate) struct Streams(Arc<Mutex<HashMap<String, usize>>>);

/// One open stream's place in [`Streams`]; given back when the stream is dropped.
struct Slot {
    streams: Arc<Mutex<HashMap<String, usize>>>,
    session: String,
}

impl Streams {
    fn take(&self, session: &str) -> Option<Slot> {
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(session.to_owned()).or_default();
        if *n >= MAX_STREAMS_PER_SESSION {
            return None;
        }
        *n += 1;
        Some(Slot {
            streams: self.0.clone(),
            session: session.to_owned(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.session) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.session);
            }
        }
    }
}

/// The children whose journal is open to `parent`: linked, consent answered.
fn open_children(roster: &Roster, parent: &ParentId) -> BTreeSet<ChildId> {
    roster
        .parent(parent)
        .map(|p| p.children)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            roster
                .child(c)
                .is_some_and(|c| c.photo_consent != Consent::NotAsked)
        })
        .collect()
}

struct Listener {
    feed: Receiver<Notice>,
    children: BTreeSet<ChildId>,
    pending: VecDeque<ChildId>,
    recheck: tokio::time::Interval,
    setting: Arc<AppState>,
    parent: ParentId,
    session: String,
    ready: bool,
    _slot: Slot,
}

impl Listener {
    /// The children still open to the parent while the session stands; `None` ends the stream.
    async fn still_open(&self) -> Option<BTreeSet<ChildId>> {
        let (session, parent) = (self.session.clone(), self.parent.clone());
        run(&self.setting, move |s| {
            s.load_session(&session, now_ms()).ok().flatten()?;
            match load_doc(s, &DocId::Roster).ok()? {
                AnyDoc::Roster(r) if r.parent(&parent).is_some() => {
                    Some(open_children(&r, &parent))
                }
                _ => None,
            }
        })
        .await
        .ok()
        .flatten()
    }

    fn queue(&mut self, child: ChildId) {
        if self.children.contains(&child) && !self.pending.contains(&child) {
            self.pending.push_back(child);
        }
    }

    /// The next event, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
        if !self.ready {
            self.ready = true;
            return Some(Event::default().event("ready").data("{}"));
        }
        loop {
            if let Some(c) = self.pending.pop_front() {
                return Some(
                    Event::default()
                        .event("journal")
                        .data(format!("{{\"child\":\"{c}\"}}")),
                );
            }
            tokio::select! {
                notice = self.feed.recv() => match notice {
                    Ok(Notice::Docs { docs, .. }) => {
                        for d in docs {
                            if let DocId::Journal(c) = d {
                                self.queue(c);
                            }
                        }
                    }
                    Ok(Notice::Device { .. }) => {}
                    // Missed some: every open journal may have changed.
                    Err(RecvError::Lagged(_)) => {
                        for c in self.children.clone() {
                            self.queue(c);
                        }
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = self.recheck.tick() => {
                    self.children = self.still_open().await?;
                }
            }
        }
    }
}

/// Live updates for the parent's open page: an event each time the journal of one of their
/// children changes. Reconnect (EventSource does) after it ends; load the journal on `ready`.
#[utoipa::path(get, path = "/api/v1/events", tag = "account",
    responses(
        (status = 200, content_type = "text/event-stream", description = "`event: ready`, then `event: journal` with `data: {\"child\": ID}` when that child's journal changed"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "agreement_required"),
        (status = 429, body = ErrorBody, description = "Too many open streams for this session (`too_many_streams`)"),
    ))]
pub(crate) async fn events(
    State(st): State<Arc<PortalState>>,
    who: SignedIn,
) -> Result<Response, ApiError> {
    if !agreement_accepted(&who.setting, &who.parent).await? {
        return Err(agreement_required());
    }
    let session = who
        .session
        .id()
        .map(|i| id_hash(&i))
        .ok_or_else(signed_out)?;
    let slot = st.streams.take(&session).ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            "This sign-in already has several pages open with live updates. Close one, or \
             reload this page.",
        )
    })?;
    let feed = who.setting.changes.subscribe().await;
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    recheck.reset();
    let listener = Listener {
        feed,
        children: open_children(&who.roster, &who.parent),
        pending: VecDeque::new(),
        recheck,
        setting: who.setting.clone(),
        parent: who.parent.clone(),
        session,
        ready: false,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(listener, |mut l| async move {
        let e = l.next().await?;
        Some((Ok::<Event, Infallible>(e), l))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEPALIVE))
        .into_response())
}
