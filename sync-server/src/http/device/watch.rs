//! `GET /v1/watch`: a device's watch connection. While the tablet app is open and online it
//! keeps one open; the server sends `Changed { docs }` whenever documents of its setting change
//! (another tablet synced, an admin command, another replica), and the device syncs at once.
//! The connection carries no document data; revocation and quarantine close it.

use std::time::Duration;

use axum::extract::Extension;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use sprig_proto::Message;
use tokio::sync::broadcast::error::RecvError;

use super::{Route, authenticate, check_network};
use crate::http::changes::Notice;
use crate::http::{ApiError, AppState, DeviceSetting, Peer};
use crate::store::DeviceStatus;

/// How often the connection is pinged, so a dead peer is noticed.
const KEEPALIVE: Duration = Duration::from_secs(20);

pub(crate) async fn watch(
    DeviceSetting(st): DeviceSetting,
    Extension(peer): Extension<Peer>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    check_network(&st, &peer).await?;
    let device = authenticate(&st, &peer, Route::Sync).await?;
    let ws =
        ws.map_err(|e| ApiError::bad_request(format!("/v1/watch is a WebSocket endpoint ({e}).")))?;
    Ok(ws.on_upgrade(move |socket| run_watch(st, device.id, device.status, socket)))
}

fn changed_frame(docs: Vec<sprig_proto::DocId>) -> Option<Vec<u8>> {
    sprig_proto::encode(&Message::Changed { docs }).ok()
}

async fn run_watch(
    st: std::sync::Arc<AppState>,
    device: String,
    status: DeviceStatus,
    mut socket: WebSocket,
) {
    let mut feed = st.changes.subscribe().await;
    // A status change between the check before the upgrade and the subscription would be
    // missed by the feed: read it once more, now that the feed listens.
    let status = match super::sync::current_status(&st, &device).await {
        Some(s) if s.is_refused() || s == DeviceStatus::Quarantined => {
            let _ = socket.send(WsMessage::Close(None)).await;
            return;
        }
        Some(s) => s,
        None => status,
    };
    // A device to be wiped (or retired) is told to sync now: the sync delivers it.
    if matches!(
        status,
        DeviceStatus::WipePending | DeviceStatus::RetirePending
    ) && let Some(f) = changed_frame(Vec::new())
        && socket.send(WsMessage::Binary(f.into())).await.is_err()
    {
        return;
    }
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    loop {
        tokio::select! {
            notice = feed.recv() => {
                let docs = match notice {
                    Ok(Notice::Docs { origin, .. }) if origin.as_deref() == Some(device.as_str()) => continue,
                    Ok(Notice::Docs { docs, .. }) => docs,
                    Ok(Notice::Device { id, status }) if id == device => match status {
                        s if s.is_refused() || s == DeviceStatus::Quarantined => break,
                        // The sync delivers the wipe.
                        DeviceStatus::WipePending | DeviceStatus::RetirePending => Vec::new(),
                        _ => continue,
                    },
                    Ok(Notice::Device { .. }) => continue,
                    // Missed some: say "something changed", the sync finds out what.
                    Err(RecvError::Lagged(_)) => Vec::new(),
                    Err(RecvError::Closed) => break,
                };
                let Some(f) = changed_frame(docs) else { continue };
                if socket.send(WsMessage::Binary(f.into())).await.is_err() {
                    break;
                }
            }
            _ = keepalive.tick() => {
                if socket.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
                // The device says nothing on this connection but pongs.
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(WsMessage::Close(None)).await;
}
