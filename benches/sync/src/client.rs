//! A light sync client: a `sprig_proto::ClientSession` over `MemoryDocs`, spoken over the same
//! mutual-TLS WebSocket a device uses (rustls with ring, the setting CA as the only root).

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sprig_proto::{ClientInfo, ClientSession, Limits, MemoryDocs, Unsynced};
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::setting::Creds;

/// A client config for one device's certificate.
pub fn tls_config(c: &Creds) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(c.ca_pem.as_bytes())?)?;
    let chain = vec![CertificateDer::from_pem_slice(c.cert_pem.as_bytes())?];
    let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes())?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// What one session moved.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pulled {
    pub docs: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// One full session from an empty replica: connect, hello, take every snapshot/sync until
/// converged. Returns the replica too (for checks outside the timed part).
pub async fn pull(
    port: u16,
    device_id: &str,
    cfg: Arc<rustls::ClientConfig>,
    docs: &mut MemoryDocs,
) -> Result<Pulled> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost")?, tcp)
        .await
        .context("TLS handshake")?;
    let limits = Limits::default();
    let mut ws_cfg = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    ws_cfg.max_message_size = Some(limits.max_frame);
    ws_cfg.max_frame_size = Some(limits.max_frame);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(
        format!("wss://localhost:{port}/v1/sync"),
        tls,
        Some(ws_cfg),
    )
    .await
    .context("WebSocket upgrade")?;
    let mut peer = docs.peer("server");
    let mut session = ClientSession::new(
        ClientInfo {
            device_id: device_id.to_owned(),
            app_version: "bench".into(),
            unsynced: Unsynced::default(),
            pin_failures: Vec::new(),
            locked: false,
        },
        limits,
    );
    ws.send(Ws::Binary(session.start(&mut peer)?.into()))
        .await?;
    while !session.is_finished() {
        let msg = ws
            .next()
            .await
            .ok_or_else(|| anyhow!("the server closed the connection"))??;
        match msg {
            Ws::Binary(frame) => {
                for out in session.receive(&mut peer, &frame)? {
                    ws.send(Ws::Binary(out.into())).await?;
                }
            }
            Ws::Close(_) => bail!("the server closed the session"),
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    let r = session.report();
    drop(peer);
    Ok(Pulled {
        docs: docs.journals.len(),
        bytes_in: r.bytes_received,
        bytes_out: r.bytes_sent,
    })
}
