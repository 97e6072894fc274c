//! The sync client: one mutual-TLS WebSocket session running [`ClientSession`] over the store,
//! then each captured photo or video streamed to the server, marked uploaded only on an
//! acknowledgement of the same SHA-256 and size, then purged.

use std::io::Read;

use futures_util::{SinkExt, StreamExt};
use hyper::body::Bytes;
use sprig_core::{MediaKind, Sha256, Timestamp};
use sprig_proto::{ClientInfo, ClientSession, Limits, Message, ProtoError, Unsynced};
use sprig_store::{MediaInfo, MediaState};
use tokio_tungstenite::tungstenite::{self, Message as Ws};

use crate::device::Device;
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
    /// The server asked this device to wipe itself (a wipe command or the end of a retire).
    pub wipe_requested: bool,
    /// The device has wiped itself: its key, database and files are gone.
    pub wiped: bool,
    /// When it wiped itself.
    pub wiped_at: Option<String>,
    /// The server received the wipe's acknowledgement on the same connection.
    pub wipe_acknowledged: bool,
    /// The wipe ended a retire: everything was on the server first.
    pub retired: bool,
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

/// A finished session and whether a wipe it ordered was acknowledged.
struct Session {
    inner: ClientSession,
    wipe_acknowledged: bool,
}

impl Session {
    fn report(&self) -> &sprig_proto::SessionReport {
        self.inner.report()
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Upload body chunk size: a few of these are in memory at once, never a whole video.
const UPLOAD_CHUNK: usize = 64 * 1024;

impl Device {
    /// Syncs with the server: documents both ways, then uploads and purges media.
    ///
    /// The hello reports the wrong PINs entered since the last sync and whether the device is
    /// locked; a completed session brings a lease signed by the setting CA, which is verified
    /// and stored (the new check-in) and clears the PIN lock-out. If the server says so, the
    /// device wipes itself instead ([`SyncReport::wiped`]); if the manager asked to retire it,
    /// it uploads everything, syncs once more and is wiped only when the server has it all.
    ///
    /// # Errors
    /// [`DeviceError::NotEnrolled`], [`DeviceError::Revoked`], [`DeviceError::Server`]
    /// (`device_revoked`, `client_certificate_required`, `device_unknown`…),
    /// [`DeviceError::NetworkNotAllowed`], [`DeviceError::LeaseRefused`],
    /// [`DeviceError::RetireFailed`], [`DeviceError::CertificateRefused`],
    /// [`DeviceError::Network`], [`DeviceError::Sync`], [`DeviceError::Wiped`].
    pub fn sync(&mut self) -> Result<SyncReport> {
        let result = self.sync_once();
        if matches!(result, Err(DeviceError::Quarantined { .. })) {
            // Recording stops until a sync completes again (after a manager's release), so
            // nothing new lands in documents the server is about to replace.
            let now = self.now().0;
            if let Err(e) = self.store.set_quarantined(Some(now)) {
                tracing::warn!(error = %e, "could not record the quarantine");
            }
        }
        result
    }

    fn sync_once(&mut self) -> Result<SyncReport> {
        self.check_live()?;
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

        let (session, marks) = self.session(&rt, &addr, &cfg, &identity.device_id)?;
        let r = session.report();
        if let Some(reason) = &r.revoked {
            return Err(DeviceError::Revoked {
                reason: reason.clone(),
            });
        }
        report.docs_replaced = r.replaced.len() as u64;
        let mut changed = r.changed.clone();
        changed.extend(r.replaced.iter().cloned());
        report.docs_changed = changed.len() as u64;
        report.docs_not_listed = r.not_listed.len() as u64;
        if r.wipe {
            return Ok(self.wiped_report(report, session.wipe_acknowledged, r.retire));
        }
        let retire = r.retire;
        let lease = r
            .lease
            .clone()
            .ok_or_else(|| DeviceError::Protocol("the session ended without a lease".into()))?;
        self.check_in(&lease, &marks)?;

        let uploads = self.upload_pending(&rt, &addr, &cfg, &mut report);
        if retire {
            return self.finish_retire(&rt, &addr, &cfg, &identity.device_id, uploads, report);
        }
        uploads?;
        self.purge_uploaded(&mut report)?;
        report.completed_at = self.now();
        self.store.record_sync(report.completed_at.0)?;
        Ok(report)
    }

    /// One session: the hello (with the check-in marks) and the sync; a wipe is carried out
    /// inside, while the connection is still open for the acknowledgement.
    fn session(
        &mut self,
        rt: &tokio::runtime::Runtime,
        addr: &ServerAddr,
        cfg: &std::sync::Arc<rustls::ClientConfig>,
        device_id: &str,
    ) -> Result<(Session, crate::lifecycle::CheckInMarks)> {
        let marks = self.check_in_marks()?;
        let info = ClientInfo {
            device_id: device_id.to_owned(),
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            unsynced: Unsynced {
                media_pending: self.pending_media()?.len() as u64,
                docs_dirty: marks.docs_dirty,
            },
            pin_failures: marks.pin_failures.clone(),
            locked: marks.locked,
        };
        let session = rt
            .block_on(self.run_session(addr, cfg.clone(), info))
            .map_err(|e| match e {
                DeviceError::Sync(ProtoError::Peer { code, message })
                    if code == "device_quarantined" =>
                {
                    DeviceError::Quarantined { message }
                }
                other => other,
            })?;
        Ok((session, marks))
    }

    /// Captured media an entry refers to: what the server is still owed. (Items no entry
    /// refers to are left over from an interrupted capture and are never sent.)
    fn pending_media(&self) -> Result<Vec<MediaInfo>> {
        let mut out = Vec::new();
        for item in self.store.media_in_state(MediaState::Captured)? {
            if !self.store.entries_with_media(&item.sha256)?.is_empty() {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// Uploads every pending item; failures are kept in the report (each copy stays). Returns
    /// early only when the device itself is refused.
    fn upload_pending(
        &mut self,
        rt: &tokio::runtime::Runtime,
        addr: &ServerAddr,
        cfg: &std::sync::Arc<rustls::ClientConfig>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let captured = self.store.media_in_state(MediaState::Captured)?.len() as u64;
        let pending = self.pending_media()?;
        report.media_unreferenced = captured - pending.len() as u64;
        for item in pending {
            match rt.block_on(self.upload(addr, cfg.clone(), &item)) {
                Ok(()) => {
                    self.store.mark_uploaded(&item.sha256)?;
                    report.media_uploaded += 1;
                }
                // The device itself is refused: nothing else will upload either.
                Err(
                    e @ (DeviceError::CertificateRefused
                    | DeviceError::Revoked { .. }
                    | DeviceError::Quarantined { .. }
                    | DeviceError::NetworkNotAllowed { .. }),
                ) => {
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
        Ok(())
    }

    fn purge_uploaded(&mut self, report: &mut SyncReport) -> Result<()> {
        let keep_thumbnails = self.policies()?.keep_thumbnails;
        let uploaded = self.store.media_in_state(MediaState::Uploaded)?;
        report.media_purged = self.store.purge_uploaded()? as u64;
        if !keep_thumbnails {
            for m in uploaded {
                self.store.remove_thumbnail(&m.sha256)?;
            }
        }
        Ok(())
    }

    /// The retire: every upload acknowledged, then a second session whose hello reports nothing
    /// pending, which the server answers with the wipe. Anything short of that wipes nothing.
    fn finish_retire(
        &mut self,
        rt: &tokio::runtime::Runtime,
        addr: &ServerAddr,
        cfg: &std::sync::Arc<rustls::ClientConfig>,
        device_id: &str,
        uploads: Result<()>,
        mut report: SyncReport,
    ) -> Result<SyncReport> {
        let failed = |why: String| DeviceError::RetireFailed { why };
        match uploads {
            Err(e @ DeviceError::Revoked { .. }) => return Err(e),
            Err(e) => return Err(failed(e.to_string())),
            Ok(()) => {}
        }
        if let Some(f) = report.media_failed.first() {
            return Err(failed(format!(
                "{} of {} uploads failed (first: {}: {})",
                report.media_failed.len(),
                report.media_failed.len() as u64 + report.media_uploaded,
                f.sha256,
                f.error
            )));
        }
        self.purge_uploaded(&mut report)?;
        report.completed_at = self.now();
        self.store.record_sync(report.completed_at.0)?;

        let (session, marks) = match self.session(rt, addr, cfg, device_id) {
            Ok(x) => x,
            Err(e @ DeviceError::Revoked { .. }) => return Err(e),
            Err(e) => return Err(failed(e.to_string())),
        };
        let r = session.report();
        if let Some(reason) = &r.revoked {
            return Err(DeviceError::Revoked {
                reason: reason.clone(),
            });
        }
        if r.wipe {
            return Ok(self.wiped_report(report, session.wipe_acknowledged, true));
        }
        if let Some(lease) = r.lease.clone() {
            self.check_in(&lease, &marks)?;
        }
        Err(failed(format!(
            "the server did not confirm it holds everything (this tablet reported {} photos or \
             videos and {} documents still to send); sync again",
            self.pending_media()?.len(),
            marks.docs_dirty
        )))
    }

    fn wiped_report(
        &self,
        mut report: SyncReport,
        acknowledged: bool,
        retired: bool,
    ) -> SyncReport {
        report.wipe_requested = true;
        report.wiped = true;
        report.wipe_acknowledged = acknowledged;
        report.retired = retired;
        report.wiped_at = self.wiped.clone();
        report.completed_at = self.now();
        report
    }

    async fn run_session(
        &mut self,
        addr: &ServerAddr,
        cfg: std::sync::Arc<rustls::ClientConfig>,
        info: ClientInfo,
    ) -> Result<Session> {
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
        drop(docs);
        if let Err(DeviceError::Sync(e)) = &result
            && let Some(frame) = e.error_frame()
        {
            let _ = ws.send(Ws::Binary(frame.into())).await;
        }
        let mut wipe_acknowledged = false;
        if result.is_ok() && session.report().wipe {
            // Wipe first, acknowledge after: the key is gone before anything else happens.
            self.wipe()?;
            if let Ok(frame) = sprig_proto::encode(&Message::WipeDone) {
                wipe_acknowledged = ws.send(Ws::Binary(frame.into())).await.is_ok();
                // Let the acknowledgement reach the server before the close.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), ws.flush()).await;
            }
        }
        let _ = ws.close(None).await;
        result.map(|()| Session {
            inner: session,
            wipe_acknowledged,
        })
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
pub(crate) fn ws_error(addr: &ServerAddr, e: tungstenite::Error) -> DeviceError {
    match e {
        tungstenite::Error::Http(res) => {
            let status = res.status().as_u16();
            net::server_error(status, res.body().as_deref().unwrap_or_default())
        }
        other => net::classify(addr, None, &other),
    }
}

impl Device {
    /// Fetches a media item's bytes from the server over mutual TLS into memory (a purged
    /// photo being viewed). Nothing is written to disk.
    ///
    /// # Errors
    /// [`DeviceError::NotEnrolled`], [`DeviceError::Server`] (`not_found`, `device_revoked`…),
    /// [`DeviceError::Network`].
    pub fn fetch_media(&self, sha: &Sha256) -> Result<Vec<u8>> {
        self.check_live()?;
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
        let path = format!("/v1/media/{}", sha.to_hex());
        let reply = rt
            .block_on(async {
                tokio::time::timeout(
                    net::IDLE_TIMEOUT,
                    net::request_full(&addr, cfg, None, "GET", &path, &[], Vec::new()),
                )
                .await
            })
            .map_err(|_| addr.network_error("the server did not send the photo in time"))??;
        if reply.status != 200 {
            return Err(reply.error());
        }
        Ok(reply.body)
    }
}
