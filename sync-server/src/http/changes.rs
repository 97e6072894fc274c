//! Who hears that a setting's documents changed: the devices watching (`/v1/watch`), so an
//! observation saved on one tablet reaches the others within a second instead of at their
//! next scheduled sync.
//!
//! A sync session that stores changes announces them at once ([`Changes::announce`]). Changes
//! written elsewhere — an admin command in another process, another replica — are found by
//! one poll of the stored document versions per setting, once a second and only while a device
//! watches; the same poll notices a device's status changing (revoked, quarantined, to be
//! wiped) for its watch connection. A notice carries ids only; the device syncs to fetch the
//! changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sprig_proto::DocId;
use tokio::sync::broadcast;

use crate::store::{DeviceStatus, ServerStore};

/// How often stored document versions are compared, while anyone watches.
const POLL: Duration = Duration::from_secs(1);

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
}

impl Changes {
    /// A feed for the setting whose documents are in `store`, with its poller running on the
    /// current runtime for as long as the feed exists.
    pub(crate) fn start(store: Arc<dyn ServerStore>) -> Arc<Changes> {
        let (tx, _) = broadcast::channel(256);
        let changes = Arc::new(Changes {
            tx,
            announced: Mutex::new(BTreeSet::new()),
        });
        let weak = Arc::downgrade(&changes);
        tokio::spawn(async move {
            let mut seen: Option<BTreeMap<DocId, u64>> = None;
            let mut statuses: Option<BTreeMap<String, DeviceStatus>> = None;
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(changes) = weak.upgrade() else {
                    return;
                };
                if changes.tx.receiver_count() == 0 {
                    // Nobody listens: forget, and look afresh when someone does.
                    seen = None;
                    statuses = None;
                    continue;
                }
                let s = store.clone();
                let Ok(Ok((now, devices))) = tokio::task::spawn_blocking(move || {
                    Ok::<_, crate::store::StoreError>((s.list_doc_heads()?, s.list_devices()?))
                })
                .await
                else {
                    continue;
                };
                let devices: BTreeMap<String, DeviceStatus> =
                    devices.into_iter().map(|d| (d.id, d.status)).collect();
                if let Some(before) = &statuses {
                    for (id, status) in &devices {
                        if before.get(id) != Some(status) {
                            let _ = changes.tx.send(Notice::Device {
                                id: id.clone(),
                                status: *status,
                            });
                        }
                    }
                }
                statuses = Some(devices);
                let now: BTreeMap<DocId, u64> =
                    now.into_iter().map(|d| (d.doc, d.version)).collect();
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

    /// A new listener.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.tx.subscribe()
    }
}
