//! The watch connection (`GET /v1/watch`): while the tablet app is open and online it keeps one
//! open, and the server says at once when documents of the setting changed — another tablet
//! synced, an admin command, another replica — so the app syncs then instead of at its next
//! scheduled sync. The connection carries no document data.

use std::time::Duration;

use futures_util::StreamExt;
use sprig_proto::{DocId, Limits, Message};
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::device::Device;
use crate::enrol::runtime;
use crate::error::{DeviceError, Result};
use crate::net::{self, ServerAddr};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// An open watch connection. Holds nothing of the store: the device may be used (and synced)
/// while it waits.
///
/// It may be dropped anywhere, an async task included (the tablet app's commands are): its
/// runtime is shut down in the background then, where dropping a runtime in place panics.
pub struct Watch {
    /// `None` only while being dropped.
    rt: Option<tokio::runtime::Runtime>,
    ws: Socket,
    addr: ServerAddr,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("server", &self.addr.authority())
            .finish_non_exhaustive()
    }
}

impl Device {
    /// Opens the watch connection to the server this device is enrolled with.
    ///
    /// # Errors
    /// [`DeviceError::NotEnrolled`], [`DeviceError::Network`], and the server's refusals
    /// ([`DeviceError::Revoked`], [`DeviceError::Quarantined`], …) as for a sync.
    pub fn watch(&self) -> Result<Watch> {
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
        let ws = rt.block_on(async {
            let tls = net::connect(&addr, cfg, None).await?;
            let url = format!("wss://{}/v1/watch", addr.authority());
            tokio_tungstenite::client_async(url, tls)
                .await
                .map(|(ws, _)| ws)
                .map_err(|e| crate::sync::ws_error(&addr, e))
        })?;
        Ok(Watch {
            rt: Some(rt),
            ws,
            addr,
        })
    }
}

impl Watch {
    /// Waits up to `timeout` for the server's next notice. `Ok(Some(docs))`: these documents
    /// changed (empty: something did; sync); `Ok(None)`: nothing within `timeout`.
    ///
    /// # Errors
    /// [`DeviceError::Network`] when the connection ended (the server closes it when this
    /// device is revoked or quarantined; a sync then says which): open a new one later.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Vec<DocId>>> {
        let Watch { rt, ws, addr } = self;
        let Some(rt) = rt.as_ref() else {
            return Err(addr.network_error("the watch connection is closed"));
        };
        rt.block_on(async {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let Ok(msg) = tokio::time::timeout_at(deadline, ws.next()).await else {
                    return Ok(None);
                };
                match msg {
                    Some(Ok(Ws::Binary(frame))) => {
                        if let Ok(Message::Changed { docs }) =
                            sprig_proto::decode(&frame, &Limits::default())
                        {
                            return Ok(Some(docs));
                        }
                    }
                    Some(Ok(Ws::Close(_))) | None => {
                        return Err(addr.network_error("the server closed the watch connection"));
                    }
                    Some(Err(e)) => return Err(crate::sync::ws_error(addr, e)),
                    // Pings are answered by the library; nothing else is expected.
                    Some(Ok(_)) => {}
                }
            }
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
