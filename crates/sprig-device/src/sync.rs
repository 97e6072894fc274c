//! The sync client: one mutual-TLS WebSocket session running [`ClientSession`] over the store,
//! then each captured photo or video streamed to the server, marked uploaded only on an
//! acknowledgement of the same SHA-256 and size, then purged.

use std::io::Read;

use futures_util::{SinkExt, StreamExt};
use hyper::body::Bytes;
use sprig_core::{MediaKind, Sha256, Timestamp};
use sprig_proto::{ClientInfo, ClientSession, Limits, ProtoError, Unsynced};
use sprig_store::{MediaInfo, MediaState};
use tokio_tungstenite::tungstenite::{self, Message as Ws};

use crate::device::{Device, now};
use crate::docset::StoreDocs;
use crate::enrol::runtime;
use crate::error::{DeviceError, Result};
use crate::net::{self, ServerAddr};

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Documents changed on this device (by the server's changes or replaced by its snapshot).
    pub docs_changed: u64,
    /// Of those, documents replaced wholesale (new device, or an erasure on the server).
    pub docs_replaced: u64,
    /// Documents this device holds that the server no longer lists (kept, not erased).
    pub docs_not_listed: u64,
    /// Photos and videos the server acknowledged in this sync.
    pub media_uploaded: u64,
    /// Photos and videos purged from this device in this sync.
    pub media_purged: u64,
    /// Uploads that failed; each copy is kept for the next sync.
    pub media_failed: Vec<MediaFailure>,
    /// Captured items no entry refers to (left over from an interrupted capture); not sent.
    pub media_unreferenced: u64,
    /// The server asked this device to wipe itself (carried out by a later version).
    pub wipe_requested: bool,
    /// When this sync completed.
    pub completed_at: Timestamp,
}

/// An upload that did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFailure {
    /// The item.
    pub sha256: Sha256,
    /// Why, in words.
    pub error: String,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Upload body chunk size: a few of these are in memory at once, never a whole video.
const UPLOAD_CHUNK: usize = 64 * 1024;

impl Device {
    /// Syncs with the server: documents both ways, then uploads and purges media.
    ///
    /// # Errors
    /// [`DeviceError::NotEnrolled`], [`DeviceError::Revoked`], [`DeviceError::Server`]
    /// (`device_revoked`, `client_certificate_required`, `device_unknown`…),
    /// [`DeviceError::CertificateRefused`], [`DeviceError::Network`], [`DeviceError::Sync`].
    pub fn sync(&mut self) -> Result<SyncReport> {
        let identity = self
            .store
            .device_identity()?
            .ok_or(DeviceError::NotEnrolled)?;
        let addr = ServerAddr::parse(&identity.server_url)?;
        let cfg = net::device_config(
            &identity.ca_cert_pem,
            &identity.client_cert_pem,
            &identity.client_key_pem,
        )?;
        let rt = runtime(&addr)?;
        let mut report = SyncReport::default();

        let pending = self.store.media_in_state(MediaState::Captured)?;
        let info = ClientInfo {
            device_id: identity.device_id.clone(),
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            unsynced: Unsynced {
                media_pending: pending.len() as u64,
                docs_dirty: 0,
            },
        };
        let session = rt.block_on(self.run_session(&addr, cfg.clone(), info))?;
        let r = session.report();
        if let Some(reason) = &r.revoked {
            return Err(DeviceError::Revoked {
                reason: reason.clone(),
            });
        }
        report.wipe_requested = r.wipe;
        report.docs_replaced = r.replaced.len() as u64;
        let mut changed = r.changed.clone();
        changed.extend(r.replaced.iter().cloned());
        report.docs_changed = changed.len() as u64;
        report.docs_not_listed = r.not_listed.len() as u64;

        for item in pending {
            if self.store.entries_with_media(&item.sha256)?.is_empty() {
                report.media_unreferenced += 1;
                continue;
            }
            match rt.block_on(self.upload(&addr, cfg.clone(), &item)) {
                Ok(()) => {
                    self.store.mark_uploaded(&item.sha256)?;
                    report.media_uploaded += 1;
                }
                // The device itself is refused: nothing else will upload either.
                Err(e @ (DeviceError::CertificateRefused | DeviceError::Revoked { .. })) => {
                    return Err(e);
                }
                Err(
                    e @ DeviceError::Server {
                        status: 401 | 403, ..
                    },
                ) => return Err(e),
                Err(e) => report.media_failed.push(MediaFailure {
                    sha256: item.sha256,
                    error: e.to_string(),
                }),
            }
        }

        let keep_thumbnails = self.policies()?.keep_thumbnails;
        let uploaded = self.store.media_in_state(MediaState::Uploaded)?;
        report.media_purged = self.store.purge_uploaded()? as u64;
        if !keep_thumbnails {
            for m in uploaded {
                self.store.remove_thumbnail(&m.sha256)?;
            }
        }
        report.completed_at = now();
        self.store.record_sync(report.completed_at.0)?;
        Ok(report)
    }

    async fn run_session(
        &mut self,
        addr: &ServerAddr,
        cfg: std::sync::Arc<rustls::ClientConfig>,
        info: ClientInfo,
    ) -> Result<ClientSession> {
        let tls = net::connect(addr, cfg, None).await?;
        let limits = Limits::default();
        let mut ws_cfg = tungstenite::protocol::WebSocketConfig::default();
        ws_cfg.max_message_size = Some(limits.max_frame);
        ws_cfg.max_frame_size = Some(limits.max_frame);
        let url = format!("wss://{}/v1/sync", addr.authority());
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, tls, Some(ws_cfg))
            .await
            .map_err(|e| ws_error(addr, e))?;

        let mut docs = StoreDocs::new(&mut self.store);
        let mut session = ClientSession::new(info, limits);
        let result = drive(&mut ws, &mut session, &mut docs, addr).await;
        if let Err(DeviceError::Sync(e)) = &result
            && let Some(frame) = e.error_frame()
        {
            let _ = ws.send(Ws::Binary(frame.into())).await;
        }
        let _ = ws.close(None).await;
        result.map(|()| session)
    }

    async fn upload(
        &self,
        addr: &ServerAddr,
        cfg: std::sync::Arc<rustls::ClientConfig>,
        item: &MediaInfo,
    ) -> Result<()> {
        let kind = if item.mime.starts_with("image/") {
            MediaKind::Photo
        } else {
            MediaKind::Video
        };
        let hex = item.sha256.to_hex();
        let mut reader = self.store.media_reader(&item.sha256)?;
        let (tx, body) = net::channel_body(4);
        let producer = async move {
            let mut buf = vec![0u8; UPLOAD_CHUNK];
            loop {
                let n = reader
                    .read(&mut buf)
                    .map_err(|e| DeviceError::Store(sprig_store::StoreError::Io(e)))?;
                if n == 0 {
                    break;
                }
                // The server stopped reading (it answered early): its answer says why.
                if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                    break;
                }
            }
            Ok(())
        };
        let reply = net::request(
            addr,
            cfg,
            None,
            "PUT",
            &format!("/v1/media/{hex}"),
            &[
                ("x-sprig-media-kind", kind.as_str().to_owned()),
                ("content-type", item.mime.clone()),
            ],
            item.size,
            body,
            producer,
        )
        .await?;
        if reply.status != 200 {
            return Err(reply.error());
        }
        let v = reply.json()?;
        let acked_sha = v["sha256"].as_str().unwrap_or_default();
        let acked_size = v["size"].as_u64();
        if acked_sha != hex || acked_size != Some(item.size) {
            return Err(DeviceError::Protocol(format!(
                "the server acknowledged {acked_sha} ({acked_size:?} bytes) for {hex} ({} bytes); the copy is kept",
                item.size
            )));
        }
        Ok(())
    }
}

async fn drive(
    ws: &mut Socket,
    session: &mut ClientSession,
    docs: &mut StoreDocs<'_>,
    addr: &ServerAddr,
) -> Result<()> {
    let hello = session.start(docs)?;
    ws.send(Ws::Binary(hello.into()))
        .await
        .map_err(|e| ws_error(addr, e))?;
    while !session.is_finished() {
        let next = tokio::time::timeout(net::IDLE_TIMEOUT, ws.next())
            .await
            .map_err(|_| addr.network_error("the server stopped answering during sync"))?;
        let Some(msg) = next else {
            return Err(addr.network_error("the server closed the connection during sync"));
        };
        match msg.map_err(|e| ws_error(addr, e))? {
            Ws::Binary(frame) => {
                for out in session.receive(docs, &frame)? {
                    ws.send(Ws::Binary(out.into()))
                        .await
                        .map_err(|e| ws_error(addr, e))?;
                }
            }
            Ws::Close(_) => {
                return Err(addr.network_error("the server closed the connection during sync"));
            }
            Ws::Text(_) => {
                return Err(DeviceError::Sync(ProtoError::Malformed {
                    reason: "a text WebSocket message".into(),
                }));
            }
            _ => {}
        }
    }
    Ok(())
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(|e| ws_error(addr, e))`
fn ws_error(addr: &ServerAddr, e: tungstenite::Error) -> DeviceError {
    match e {
        tungstenite::Error::Http(res) => {
            let status = res.status().as_u16();
            net::server_error(status, res.body().as_deref().unwrap_or_default())
        }
        other => net::classify(addr, None, &other),
    }
}
