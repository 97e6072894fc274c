//! `GET /v1/sync`: the WebSocket sync session of one device, run by `ServerSession` over
//! `DeviceDocs`; the lifecycle (revoke, wipe, retire, quarantine) acts on it before and during
//! the session.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Extension;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use sprig_proto::{Hello, Lease, Message, ProtoError, ServerSession};

use super::{Route, authenticate, check_network};
use crate::admin::now_ms;
use crate::docs::DeviceDocs;
use crate::http::{ApiError, AppState, DeviceSetting, Peer, audit};
use crate::policy::Policy;
use crate::store::{
    Contact, Device, DeviceStatus, PinFailureRecord, Quarantine, ServerStore, StatusChange,
};

pub(crate) async fn sync(
    DeviceSetting(st): DeviceSetting,
    Extension(peer): Extension<Peer>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    check_network(&st, &peer).await?;
    let device = authenticate(&st, &peer, Route::Sync).await?;
    let ws =
        ws.map_err(|e| ApiError::bad_request(format!("/v1/sync is a WebSocket endpoint ({e}).")))?;
    let max = st.config.limits.max_frame;
    Ok(ws
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| run_sync(st, device, socket)))
}

/// How long a sync session may wait for the device's next frame.
const SYNC_IDLE: Duration = Duration::from_secs(120);
/// How often an open session checks whether its device has been revoked or is to be wiped.
const STATUS_POLL: Duration = Duration::from_millis(250);
/// How long the server waits for a device's wipe acknowledgement after sending the wipe.
const WIPE_ACK_WAIT: Duration = Duration::from_secs(30);
/// What a revoked device is told.
const REVOKED_REASON: &str = "This device has been revoked by the setting's manager.";
/// What a quarantined device is told, at every connection until a manager releases it.
pub(crate) const QUARANTINED: &str = "This tablet is quarantined: it sent a change it is not allowed to \
    make, so the server kept nothing of that sync. A manager must review and release it \
    (sprig-server device release) before it can sync again. Nothing recorded on this tablet \
    has been deleted.";

/// A session and its documents, moved to a blocking thread for each frame.
struct SyncRun {
    session: ServerSession,
    docs: DeviceDocs,
    welcomed: bool,
    retire: bool,
    /// Documents sent whole to replace the device's copies after its release from quarantine.
    replacing: Vec<sprig_proto::DocId>,
}

enum Step {
    /// Frames to send; keep going.
    Send(Vec<Vec<u8>>),
    /// Frames to send, then close: the session is over.
    Finish(Vec<Vec<u8>>),
    /// Frames to send, the last of them a wipe; then wait for the device's acknowledgement.
    /// `retire`: the wipe ends a retire (the device synced everything first).
    Wipe { frames: Vec<Vec<u8>>, retire: bool },
}

fn error_frame(code: &str, message: &str) -> Vec<Vec<u8>> {
    sprig_proto::encode(&Message::Error {
        code: code.into(),
        message: message.into(),
    })
    .into_iter()
    .collect()
}

fn frame_of(msg: &Message) -> Vec<Vec<u8>> {
    sprig_proto::encode(msg).into_iter().collect()
}

fn revoked_frame() -> Vec<Vec<u8>> {
    frame_of(&Message::Revoked {
        reason: REVOKED_REASON.into(),
    })
}

/// Records that a wipe is being sent to `device` and returns its frame.
fn deliver_wipe(store: &dyn ServerStore, device: &str, retire: bool) -> Vec<Vec<u8>> {
    if let Err(e) = store.record_wipe_delivered(device, now_ms()) {
        tracing::error!(error = %e, "could not record the wipe delivery");
    }
    audit(
        store,
        "server",
        Some(device),
        "wipe_delivered",
        format!("reason={}", if retire { "retire" } else { "wipe" }),
    );
    tracing::info!(device, retire, "wipe sent");
    frame_of(&Message::Wipe)
}

/// The device acknowledged its wipe: it is wiped (or retired, when the wipe ended a retire).
fn record_wiped(store: &dyn ServerStore, device: &str, retire: bool) {
    use DeviceStatus::{Active, RetirePending, Retired, Revoked, WipePending, Wiped};
    let now = now_ms();
    let retired = retire
        && matches!(
            store.change_device_status(device, &[RetirePending], Retired, now),
            Ok(StatusChange::Changed { .. })
        );
    if !retired
        && let Err(e) = store.change_device_status(
            device,
            &[Active, Revoked, WipePending, RetirePending],
            Wiped,
            now,
        )
    {
        tracing::error!(error = %e, "could not record the wipe");
    }
    let action = if retired {
        "retired"
    } else {
        "wipe_acknowledged"
    };
    audit(
        store,
        &format!("device:{device}"),
        Some(device),
        action,
        String::new(),
    );
    tracing::info!(device, retired, "wipe acknowledged");
}

/// Signs a fresh lease for `device` under the current policy.
fn lease_frame(st: &AppState, device: &str) -> Result<Vec<u8>, String> {
    let policy = Policy::load(st.store.as_ref()).map_err(|e| e.to_string())?;
    let lease = st
        .ca
        .sign_lease(Lease {
            device_id: device.to_owned(),
            issued_at_ms: now_ms(),
            lock_after_secs: policy.lock_after_secs,
            wipe_after_secs: policy.wipe_after_secs,
            max_pin_failures: policy.max_pin_failures,
            signature: Vec::new(),
        })
        .map_err(|e| e.to_string())?;
    sprig_proto::encode(&Message::Lease(lease)).map_err(|e| e.to_string())
}

/// What the hello reports goes into the register and the audit log, before anything else.
fn record_hello(store: &dyn ServerStore, device: &str, hello: &Hello) {
    let contact = Contact {
        at: now_ms(),
        app_version: hello.app_version.clone(),
        unsynced_media: hello.unsynced.media_pending,
        unsynced_docs: hello.unsynced.docs_dirty,
        synced: false,
        locked: hello.locked,
    };
    if let Err(e) = store.record_contact(device, &contact) {
        tracing::error!(error = %e, "could not update the device register");
    }
    if !hello.pin_failures.is_empty() {
        let failures: Vec<PinFailureRecord> = hello
            .pin_failures
            .iter()
            .map(|p| PinFailureRecord {
                staff_id: p.staff_id.clone(),
                at: p.at_ms,
            })
            .collect();
        match store.record_pin_failures(device, &failures, now_ms()) {
            Ok(n) if n > 0 => tracing::warn!(device, new = n, "wrong PINs reported"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not record reported wrong PINs"),
        }
    }
}

fn sync_step(st: &AppState, device: &Device, run: &mut SyncRun, frame: &[u8]) -> Step {
    let store = st.store.as_ref();
    let mut out = match run.session.receive(&mut run.docs, frame) {
        Ok(out) => out,
        Err(e) => return fail(store, device, &run.docs, &e),
    };
    if !run.welcomed
        && let Some(hello) = run.session.hello()
    {
        if hello.device_id != device.id {
            return Step::Finish(error_frame(
                "device_mismatch",
                "The hello names another device than this certificate; enrol this device again.",
            ));
        }
        record_hello(store, &device.id, hello);
        // The register may have changed since the connection was let in.
        let status = match store.device(&device.id) {
            Ok(Some(d)) => d.status,
            Ok(None) => DeviceStatus::Revoked,
            Err(e) => {
                tracing::error!(error = %e, "could not read the device register");
                return Step::Finish(error_frame(
                    "internal",
                    "The server failed; try again later and tell the setting's administrator if it persists.",
                ));
            }
        };
        match status {
            s if s.is_refused() => return Step::Finish(revoked_frame()),
            DeviceStatus::Quarantined => {
                return Step::Finish(error_frame("device_quarantined", QUARANTINED));
            }
            DeviceStatus::WipePending => {
                return Step::Wipe {
                    frames: deliver_wipe(store, &device.id, false),
                    retire: false,
                };
            }
            DeviceStatus::RetirePending => {
                run.retire = true;
                run.session.set_retire(true);
            }
            _ => {}
        }
        run.welcomed = true;
        // Released from quarantine: the refused documents go back to the server's copies.
        match store.pending_replaces(&device.id) {
            Ok(docs) if !docs.is_empty() => {
                run.session.set_replace(docs.iter().cloned().collect());
                run.replacing = docs;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "could not read the documents to replace");
                return Step::Finish(error_frame(
                    "internal",
                    "The server failed; try again later and tell the setting's administrator if it persists.",
                ));
            }
        }
        match run.session.welcome(&mut run.docs, now_ms()) {
            Ok(w) => out.extend(w),
            Err(e) => return fail(store, device, &run.docs, &e),
        }
    }
    if run.session.is_finished() {
        // Converged: everything the session received, checked, is written now, at once.
        let replaced: Vec<sprig_proto::DocId> = run
            .replacing
            .iter()
            .filter(|d| run.session.report().replaced.contains(d))
            .cloned()
            .collect();
        match run.docs.publish(&replaced) {
            Ok(changed) => st.changes.announce(changed, &device.id),
            Err(e) => {
                tracing::error!(error = %e, "could not store the session's changes");
                return Step::Finish(error_frame(
                    "store",
                    "The server could not store this sync; nothing was lost on the tablet. Try again later and tell the setting's administrator if it persists.",
                ));
            }
        }
        let r = run.session.report();
        let hello = run.session.hello();
        let unsynced = hello.map(|h| h.unsynced).unwrap_or_default();
        let contact = Contact {
            at: now_ms(),
            app_version: hello.map(|h| h.app_version.clone()).unwrap_or_default(),
            unsynced_media: unsynced.media_pending,
            unsynced_docs: 0,
            synced: true,
            // A completed sync unlocks the device (its lease is renewed, its PIN lock-out
            // cleared).
            locked: false,
        };
        if let Err(e) = store.record_contact(&device.id, &contact) {
            tracing::error!(error = %e, "could not update the device register");
        }
        audit(
            store,
            &format!("device:{}", device.id),
            Some(&device.id),
            "sync",
            format!(
                "changed={} sent_docs={} frames_in={} frames_out={} bytes_in={} bytes_out={}",
                r.changed.len(),
                r.replaced.len(),
                r.frames_received,
                r.frames_sent,
                r.bytes_received,
                r.bytes_sent
            ),
        );
        tracing::info!(device = %device.id, changed = r.changed.len(), "sync finished");
        // A retiring device that reported nothing left to hand over is now fully on the server:
        // its documents are in sync and every upload was acknowledged.
        if run.retire && unsynced.media_pending == 0 && unsynced.docs_dirty == 0 {
            out.extend(deliver_wipe(store, &device.id, true));
            return Step::Wipe {
                frames: out,
                retire: true,
            };
        }
        match lease_frame(st, &device.id) {
            Ok(lease) => out.push(lease),
            Err(e) => {
                tracing::error!(error = %e, "could not sign the lease");
                out.extend(error_frame(
                    "internal",
                    "The server could not renew this device's lease; try again later and tell the setting's administrator if it persists.",
                ));
            }
        }
        return Step::Finish(out);
    }
    Step::Send(out)
}

/// A failed session: the error goes to the device and the audit log. A refused change
/// quarantines the device, holding what it sent for the document for a manager to review.
fn fail(store: &dyn ServerStore, device: &Device, docs: &DeviceDocs, e: &ProtoError) -> Step {
    if let Some(refusal) = docs.refusal() {
        let q = Quarantine {
            device: device.id.clone(),
            doc: refusal.doc.clone(),
            rule: refusal.violation.rule().to_owned(),
            detail: refusal.violation.to_string(),
            at: now_ms(),
            held: refusal.held.clone(),
        };
        match store.quarantine_device(&q) {
            Ok(_) => tracing::warn!(
                device = %device.id,
                doc = %refusal.doc,
                rule = refusal.violation.rule(),
                "device quarantined"
            ),
            Err(err) => tracing::error!(error = %err, "could not record the quarantine"),
        }
        return Step::Finish(error_frame("device_quarantined", QUARANTINED));
    }
    tracing::warn!(device = %device.id, code = e.code(), "sync session failed");
    audit(
        store,
        &format!("device:{}", device.id),
        Some(&device.id),
        "sync_failed",
        format!("code={}", e.code()),
    );
    Step::Finish(e.error_frame().into_iter().collect())
}

/// Sends `frames`; false when the connection is gone.
async fn send_all(socket: &mut WebSocket, frames: Vec<Vec<u8>>) -> bool {
    for f in frames {
        crate::http::metrics::frame_out(f.len());
        if socket.send(WsMessage::Binary(f.into())).await.is_err() {
            return false;
        }
    }
    true
}

/// After a wipe: waits for the device's acknowledgement on the same connection. Without it the
/// device stays as it was (wipe-pending or retire-pending), with the delivery time recorded.
async fn await_wipe_done(st: &Arc<AppState>, device: &str, socket: &mut WebSocket, retire: bool) {
    let deadline = tokio::time::sleep(WIPE_ACK_WAIT);
    tokio::pin!(deadline);
    loop {
        let msg = tokio::select! {
            () = &mut deadline => break,
            m = socket.recv() => m,
        };
        let frame = match msg {
            Some(Ok(WsMessage::Binary(b))) => b,
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            _ => break,
        };
        match sprig_proto::decode(&frame, &st.config.limits) {
            Ok(Message::WipeDone) => {
                let (store, id) = (st.store.clone(), device.to_owned());
                let _ = tokio::task::spawn_blocking(move || {
                    record_wiped(store.as_ref(), &id, retire);
                })
                .await;
                return;
            }
            other => {
                tracing::debug!(device, ?other, "no wipe acknowledgement");
                break;
            }
        }
    }
    tracing::warn!(device, "the wipe was sent but not acknowledged");
}

/// The device's status now, read from the store (another process, `sprig-server device
/// revoke`, may have changed it).
pub(crate) async fn current_status(st: &Arc<AppState>, device: &str) -> Option<DeviceStatus> {
    let (store, id) = (st.store.clone(), device.to_owned());
    match tokio::task::spawn_blocking(move || store.device(&id)).await {
        Ok(Ok(Some(d))) => Some(d.status),
        Ok(Ok(None)) => Some(DeviceStatus::Revoked),
        _ => None,
    }
}

async fn run_sync(st: Arc<AppState>, device: Device, mut socket: WebSocket) {
    let _counted = crate::http::metrics::Session::start();
    let mut run = Some(SyncRun {
        session: ServerSession::new(st.config.limits.clone()),
        docs: DeviceDocs::with_views(st.store.clone(), &device.id, st.roster_views.clone()),
        welcomed: false,
        retire: false,
        replacing: Vec::new(),
    });
    let device = Arc::new(device);
    let mut poll = tokio::time::interval(STATUS_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A device that goes silent mid-session (it lost the network) frees its task.
    let idle = tokio::time::sleep(SYNC_IDLE);
    tokio::pin!(idle);
    loop {
        let msg = tokio::select! {
            () = &mut idle => break,
            _ = poll.tick() => {
                // Revoked, or told to wipe, while the session is open: act on it now.
                match current_status(&st, &device.id).await {
                    Some(s) if s.is_refused() => {
                        audit(
                            st.store.as_ref(),
                            "server",
                            Some(&device.id),
                            "session_closed",
                            format!("status={}", s.as_str()),
                        );
                        tracing::info!(device = %device.id, "revoked during a session");
                        let _ = send_all(&mut socket, revoked_frame()).await;
                        break;
                    }
                    Some(DeviceStatus::Quarantined) => {
                        let _ = send_all(
                            &mut socket,
                            error_frame("device_quarantined", QUARANTINED),
                        )
                        .await;
                        break;
                    }
                    Some(DeviceStatus::WipePending) if run.as_ref().is_some_and(|r| r.welcomed) => {
                        let frames = deliver_wipe(st.store.as_ref(), &device.id, false);
                        if send_all(&mut socket, frames).await {
                            await_wipe_done(&st, &device.id, &mut socket, false).await;
                        }
                        break;
                    }
                    _ => continue,
                }
            }
            m = socket.recv() => m,
        };
        let Some(msg) = msg else { break };
        idle.as_mut().reset(tokio::time::Instant::now() + SYNC_IDLE);
        let frame = match msg {
            Ok(WsMessage::Binary(b)) => {
                crate::http::metrics::frame_in(b.len());
                b
            }
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => continue,
            Ok(WsMessage::Text(_)) => {
                let _ = send_all(
                    &mut socket,
                    error_frame("malformed", "sync messages are binary frames"),
                )
                .await;
                break;
            }
            Ok(WsMessage::Close(_)) | Err(_) => break,
        };
        let Some(mut r) = run.take() else { break };
        let (st2, dev) = (st.clone(), device.clone());
        let Ok((r, step)) = tokio::task::spawn_blocking(move || {
            let step = sync_step(&st2, &dev, &mut r, &frame);
            (r, step)
        })
        .await
        else {
            tracing::error!("sync worker panicked");
            break;
        };
        run = Some(r);
        match step {
            Step::Send(f) => {
                if !send_all(&mut socket, f).await {
                    return;
                }
            }
            Step::Finish(f) => {
                if !send_all(&mut socket, f).await {
                    return;
                }
                break;
            }
            Step::Wipe { frames, retire } => {
                if send_all(&mut socket, frames).await {
                    await_wipe_done(&st, &device.id, &mut socket, retire).await;
                }
                break;
            }
        }
    }
    let _ = socket.send(WsMessage::Close(None)).await;
}
