//! Who hears that a setting's documents changed: the devices watching (`/v1/watch`), so an
//! observation saved on one tablet reaches the others within a second instead of at their
//! next scheduled sync.
//!
//! A sync session that stores changes announces them at once ([`Changes::announce`]). Changes
//! written elsewhere — an admin command in another process, another replica — are found by
//! one poll per setting, once a second and only while a device watches (sooner when the
//! database's NOTIFY wakes it, [`Changes::wake`]): the stored document versions, and the
//! setting's event table ([`ServerStore::events_after`]), which every status change writes in
//! its own transaction. The event table is the source of truth for revocations, wipes and
//! quarantines: whichever process or replica made the change, every replica's poll reads it.
//! A notice carries ids only; the device syncs to fetch the changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sprig_proto::DocId;
use tokio::sync::{Notify, broadcast};

use crate::store::{DeviceStatus, ServerStore, SettingEvent};

/// How often stored document versions and events are read, while anyone watches.
const POLL: Duration = Duration::from_secs(1);
/// Events read per poll at most; more wait for the next one.
const EVENTS_PER_POLL: u32 = 256;

/// One announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Notice {
    /// These documents changed; `origin` is the device whose session wrote them (it has them
    /// already), `None` for any other writer.
    Docs {
        docs: Vec<DocId>,
        origin: Option<String>,
    },
    /// A device's status changed (revoked, to be wiped, quarantined, …).
    Device { id: String, status: DeviceStatus },
}

/// The change feed of one setting.
#[derive(Debug)]
pub(crate) struct Changes {
    tx: broadcast::Sender<Notice>,
    /// Documents announced since the last poll: the poll does not announce them again.
    announced: Mutex<BTreeSet<DocId>>,
    /// Wakes the poller before its next tick (a NOTIFY from the database).
    wake: Arc<Notify>,
    /// The newest event already reflected in what listeners know; `None` while nobody
    /// listens. Shared by the poller and [`Changes::subscribe`], which sets it before a new
    /// listener reads anything, so no event falls between a watch's status check and the feed.
    last_event: Arc<Mutex<Option<u64>>>,
    store: Arc<dyn ServerStore>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What one poll read.
struct Polled {
    heads: BTreeMap<DocId, u64>,
    /// Events after the last one seen, or the newest sequence number on the first poll.
    events: Result<Vec<SettingEvent>, u64>,
}

fn poll_once(
    store: &dyn ServerStore,
    after: Option<u64>,
) -> Result<Polled, crate::store::StoreError> {
    let heads = store
        .list_doc_heads()?
        .into_iter()
        .map(|d| (d.doc, d.version))
        .collect();
    let events = match after {
        Some(seq) => Ok(store.events_after(seq, EVENTS_PER_POLL)?),
        None => Err(store.last_event_seq()?),
    };
    Ok(Polled { heads, events })
}

impl Changes {
    /// A feed for the setting whose documents are in `store`, with its poller running on the
    /// current runtime for as long as the feed exists.
    pub(crate) fn start(store: Arc<dyn ServerStore>) -> Arc<Changes> {
        let (tx, _) = broadcast::channel(256);
        let changes = Arc::new(Changes {
            tx,
            announced: Mutex::new(BTreeSet::new()),
            wake: Arc::new(Notify::new()),
            last_event: Arc::new(Mutex::new(None)),
            store: store.clone(),
        });
        let weak = Arc::downgrade(&changes);
        let wake = changes.wake.clone();
        let last_event = changes.last_event.clone();
        tokio::spawn(async move {
            let mut seen: Option<BTreeMap<DocId, u64>> = None;
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = wake.notified() => {}
                }
                let Some(changes) = weak.upgrade() else {
                    return;
                };
                let after = {
                    let mut last = locked(&last_event);
                    // Under the lock: a subscriber either counts already, or finds `None`
                    // and sets the baseline itself.
                    if changes.tx.receiver_count() == 0 {
                        // Nobody listens: forget, and look afresh when someone does.
                        seen = None;
                        *last = None;
                        continue;
                    }
                    *last
                };
                let s = store.clone();
                let Ok(Ok(polled)) =
                    tokio::task::spawn_blocking(move || poll_once(s.as_ref(), after)).await
                else {
                    continue;
                };
                match polled.events {
                    Err(newest) => {
                        let mut last = locked(&last_event);
                        *last = Some(last.map_or(newest, |l| l.min(newest)));
                    }
                    Ok(events) => {
                        for e in events {
                            *locked(&last_event) = Some(e.seq);
                            if e.kind != SettingEvent::DEVICE_STATUS {
                                continue;
                            }
                            if let (Some(id), Some(status)) =
                                (e.device, DeviceStatus::parse(&e.detail))
                            {
                                let _ = changes.tx.send(Notice::Device { id, status });
                            }
                        }
                    }
                }
                let now = polled.heads;
                let announced = std::mem::take(
                    &mut *changes
                        .announced
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                if let Some(before) = &seen {
                    let docs: Vec<DocId> = now
                        .iter()
                        .filter(|(doc, v)| {
                            before.get(*doc) != Some(*v) && !announced.contains(*doc)
                        })
                        .map(|(doc, _)| doc.clone())
                        .collect();
                    if !docs.is_empty() {
                        let _ = changes.tx.send(Notice::Docs { docs, origin: None });
                    }
                }
                seen = Some(now);
            }
        });
        changes
    }

    /// Announces documents a sync session of `origin` just stored.
    pub(crate) fn announce(&self, docs: Vec<DocId>, origin: &str) {
        if !docs.is_empty() {
            self.announced
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(docs.iter().cloned());
            // No receiver is not an error: nobody watches.
            let _ = self.tx.send(Notice::Docs {
                docs,
                origin: Some(origin.to_owned()),
            });
        }
    }

    /// Announces documents the server itself just wrote (a parent's contribution from the
    /// portal): every device hears of it, none is its origin.
    pub(crate) fn announce_written(&self, docs: Vec<DocId>) {
        if !docs.is_empty() {
            locked(&self.announced).extend(docs.iter().cloned());
            let _ = self.tx.send(Notice::Docs { docs, origin: None });
        }
    }

    /// Polls now instead of at the next tick: something was written elsewhere (the database
    /// said so). Only a hint; the tick polls anyway.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// A new listener. It hears of every event after the moment it subscribed: the first
    /// listener's subscription reads the newest event's number before returning, so whatever
    /// the listener reads next (its device's status) already reflects the events before it.
    pub(crate) async fn subscribe(&self) -> broadcast::Receiver<Notice> {
        let (rx, need) = {
            let last = locked(&self.last_event);
            (self.tx.subscribe(), last.is_none())
        };
        if need {
            let store = self.store.clone();
            match tokio::task::spawn_blocking(move || store.last_event_seq()).await {
                Ok(Ok(seq)) => {
                    let mut last = locked(&self.last_event);
                    *last = Some(last.map_or(seq, |l| l.min(seq)));
                }
                // The poller takes its own baseline at its next tick.
                Ok(Err(e)) => tracing::warn!(error = %e, "could not read the event table"),
                Err(e) => tracing::warn!(error = %e, "could not read the event table"),
            }
        }
        rx
    }
}
