//! TLS and HTTP plumbing for enrolment, sync and uploads: the pinned-CA verifier used before the
//! device has its certificate, mutual-TLS client configs afterwards (ring provider only), and
//! one-request HTTP/1.1 exchanges over hyper.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::Digest;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::{DeviceError, Result};

/// How long connecting (TCP and TLS handshake) may take before the server counts as unreachable.
pub(crate) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// How long the server may stay silent in the middle of an exchange.
pub(crate) const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// A parsed `https://host[:port]` server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerAddr {
    /// As given, without a trailing slash.
    pub url: String,
    /// Host name or IP (no brackets).
    pub host: String,
    pub port: u16,
}

impl ServerAddr {
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| {
            DeviceError::InvalidInput(format!("'{url}' is not a server address: {why}"))
        };
        let uri: Uri = url
            .trim()
            .parse()
            .map_err(|_| bad("use https://host:port"))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad("it must start with https://"));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = uri.port_u16().unwrap_or(443);
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Self {
            url: format!("https://{authority}"),
            host,
            port,
        })
    }

    pub(crate) fn server_name(&self) -> Result<ServerName<'static>> {
        ServerName::try_from(self.host.clone())
            .map_err(|_| DeviceError::InvalidInput(format!("'{}' is not a host name", self.host)))
    }

    /// `host[:port]` for Host headers and WebSocket URLs.
    pub(crate) fn authority(&self) -> &str {
        self.url.trim_start_matches("https://")
    }

    pub(crate) fn network_error(&self, message: impl std::fmt::Display) -> DeviceError {
        DeviceError::Network {
            url: self.url.clone(),
            message: message.to_string(),
        }
    }
}

/// `sha256:<hex>` of a DER certificate, the form managers are shown.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(der)))
}

/// The `sha256:<hex>` form of a parsed pin.
pub(crate) fn fingerprint_of_pin(pin: &[u8; 32]) -> String {
    format!("sha256:{}", hex::encode(pin))
}

/// Parses `sha256:<64 hex>` (the prefix is optional; case and `:` separators are ignored).
pub(crate) fn parse_fingerprint(fp: &str) -> Result<[u8; 32]> {
    let hexpart = fp.trim();
    let hexpart = hexpart
        .strip_prefix("sha256:")
        .or_else(|| hexpart.strip_prefix("SHA256:"))
        .unwrap_or(hexpart);
    let cleaned: String = hexpart.chars().filter(|c| *c != ':').collect();
    let mut out = [0u8; 32];
    hex::decode_to_slice(cleaned.to_ascii_lowercase(), &mut out).map_err(|_| {
        DeviceError::InvalidInput(format!(
            "'{fp}' is not a CA fingerprint; copy it from the enrolment screen (sha256:<64 hex digits>)"
        ))
    })?;
    Ok(out)
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts the server only if the chain it presents contains a CA certificate whose DER hashes
/// to the pinned fingerprint and the server's certificate verifies against that CA (name,
/// validity, signature, usage), with that CA as the only trust anchor.
#[derive(Debug)]
pub(crate) struct PinnedCaVerifier {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl PinnedCaVerifier {
    pub(crate) fn new(pin: [u8; 32]) -> Self {
        Self {
            pin,
            provider: provider(),
        }
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates
            .iter()
            .find(|c| sha2::Sha256::digest(c.as_ref()).as_slice() == self.pin)
        else {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ));
        };
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn tls_err(e: impl std::fmt::Display) -> DeviceError {
    DeviceError::Protocol(format!("TLS configuration: {e}"))
}

/// The client config for enrolment: no client certificate, the pinned-CA verifier.
pub(crate) fn enrol_config(pin: [u8; 32]) -> Result<Arc<rustls::ClientConfig>> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCaVerifier::new(pin)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The client config after enrolment: the stored CA as the only root, the device's
/// certificate and key for mutual TLS.
pub(crate) fn device_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<rustls::ClientConfig>> {
    let stored = |what: &str| {
        DeviceError::Protocol(format!(
            "the stored {what} is damaged; wipe and re-enrol this device"
        ))
    };
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|_| stored("CA"))?)
        .map_err(|_| stored("CA"))?;
    let chain = vec![
        CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|_| stored("certificate"))?,
    ];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| stored("key"))?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(tls_err)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Classifies a connection failure: a pin mismatch, a refused client certificate, or the
/// network.
pub(crate) fn classify(
    addr: &ServerAddr,
    pinned: Option<&str>,
    e: &(dyn std::error::Error + 'static),
) -> DeviceError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        // Wrapping errors (tungstenite's IO error, hyper's) often repeat their source's text.
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    let lower = text.to_lowercase();
    // The pinned verifier says UnknownIssuer when no presented CA matches the pin, and a
    // signature error when the leaf was not issued by the pinned CA.
    if let Some(fp) = pinned
        && (lower.contains("unknownissuer") || lower.contains("badsignature"))
    {
        return DeviceError::CaMismatch {
            expected: fp.to_owned(),
        };
    }
    if lower.contains("received fatal alert")
        && (lower.contains("certificate") || lower.contains("unknownca"))
    {
        return DeviceError::CertificateRefused;
    }
    addr.network_error(plain_network_text(&text))
}

/// Says a cut connection in words a member of staff understands and drops the library links
/// (rustls appends a docs.rs URL to an unexpected end of stream).
fn plain_network_text(text: &str) -> String {
    let lower = text.to_lowercase();
    let cut = [
        "close_notify",
        "unexpected eof",
        "broken pipe",
        "connection reset",
        "connection aborted",
    ];
    if cut.iter().any(|c| lower.contains(c)) {
        return "the connection was cut before the sync finished".to_owned();
    }
    text.split(": ")
        .filter(|part| !part.trim_start().starts_with("https://docs.rs/"))
        .collect::<Vec<_>>()
        .join(": ")
}

/// Opens TCP + TLS to the server.
pub(crate) async fn connect(
    addr: &ServerAddr,
    cfg: Arc<rustls::ClientConfig>,
    pinned: Option<&str>,
) -> Result<TlsStream<TcpStream>> {
    let handshake = async {
        let tcp = TcpStream::connect((addr.host.as_str(), addr.port))
            .await
            .map_err(|e| addr.network_error(e))?;
        // A sync session is a conversation of small frames, turn by turn: without this, Nagle's
        // algorithm holds each turn's last frame for the peer's delayed ACK (≈ 40 ms a turn).
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(cfg)
            .connect(addr.server_name()?, tcp)
            .await
            .map_err(|e| classify(addr, pinned, &e))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| addr.network_error("no answer within 15 seconds"))?
}

/// An HTTP answer, body collected.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    /// The JSON body, or a protocol error.
    pub(crate) fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|_| {
            DeviceError::Protocol(format!("a {} answer that is not JSON", self.status))
        })
    }

    /// The contract's `{code, message}` error for a non-200 answer.
    pub(crate) fn error(&self) -> DeviceError {
        server_error(self.status, &self.body)
    }
}

/// Turns an error body of the HTTP contract into [`DeviceError::Server`].
pub(crate) fn server_error(status: u16, body: &[u8]) -> DeviceError {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let code = v["code"].as_str().unwrap_or("http_error").to_owned();
    let message = v["message"]
        .as_str()
        .map_or_else(|| format!("HTTP status {status}"), str::to_owned);
    if code == "device_quarantined" {
        return DeviceError::Quarantined { message };
    }
    if code == "network_not_allowed" {
        // The address the server saw: its `address` field, else the one its message names.
        let address = v["address"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| address_in(&message))
            .unwrap_or_else(|| "unknown address".into());
        return DeviceError::NetworkNotAllowed { address };
    }
    DeviceError::Server {
        code,
        message,
        status,
    }
}

/// The first IP address (v4 or v6, optionally with a port) named in `text`.
fn address_in(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';' | '"' | '\''))
        .map(|w| w.trim_end_matches(['.', ':']))
        .find(|w| {
            w.parse::<std::net::IpAddr>().is_ok() || w.parse::<std::net::SocketAddr>().is_ok()
        })
        .map(str::to_owned)
}

/// Sends one request with a body held in memory.
pub(crate) async fn request_full(
    addr: &ServerAddr,
    cfg: Arc<rustls::ClientConfig>,
    pinned: Option<&str>,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<Reply> {
    let len = body.len() as u64;
    request(
        addr,
        cfg,
        pinned,
        method,
        path,
        headers,
        len,
        Full::new(Bytes::from(body)),
        std::future::ready(Ok(())),
    )
    .await
}

/// The body of a streamed upload, fed through a small channel.
pub(crate) type ChannelBody = StreamBody<
    futures_util::stream::BoxStream<'static, std::result::Result<Frame<Bytes>, Infallible>>,
>;

/// A body fed by the returned sender, at most `depth` chunks buffered.
pub(crate) fn channel_body(depth: usize) -> (tokio::sync::mpsc::Sender<Bytes>, ChannelBody) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(depth);
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    });
    (tx, StreamBody::new(Box::pin(stream)))
}

/// Sends one request, drives `producer` (which feeds the body) alongside, and collects the
/// answer. Everything runs in the caller's task, so the producer may borrow the store.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn request<B>(
    addr: &ServerAddr,
    cfg: Arc<rustls::ClientConfig>,
    pinned: Option<&str>,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    content_length: u64,
    body: B,
    producer: impl Future<Output = Result<()>>,
) -> Result<Reply>
where
    B: hyper::body::Body<Data = Bytes> + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tls = connect(addr, cfg, pinned).await?;
    let io = TokioIo::new(KeepReading::new(tls));
    let (mut send, conn) = hyper::client::conn::http1::handshake::<_, B>(io)
        .await
        .map_err(|e| classify(addr, pinned, &e))?;
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.authority())
        .header("content-length", content_length.to_string());
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    let req = b
        .body(body)
        .map_err(|e| DeviceError::Protocol(e.to_string()))?;
    let exchange = async {
        let res = send
            .send_request(req)
            .await
            .map_err(|e| classify(addr, pinned, &e))?;
        let status = res.status().as_u16();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| classify(addr, pinned, &e))?
            .to_bytes()
            .to_vec();
        Ok::<_, DeviceError>(Reply { status, body })
    };
    // The answer decides, whenever it comes: a server that refuses early (413, 403, a full
    // disk) answers and closes while the body is still streaming, and the connection's end
    // must not hide that answer. Only a producer failure (the vault could not be read) comes
    // first. The producer is not awaited after the answer: a server that answered has stopped
    // reading, and the body channel may never drain.
    tokio::pin!(conn, exchange, producer);
    let mut conn_done = false;
    let mut produced = false;
    loop {
        tokio::select! {
            biased;
            p = &mut producer, if !produced => {
                p?;
                produced = true;
            }
            r = &mut exchange => return r,
            // The exchange ends soon after the connection does (with the answer, if one came).
            _ = &mut conn, if !conn_done => conn_done = true,
        }
    }
}

/// The connection under an HTTP exchange, made to keep reading after writing fails: when the
/// server answers early and closes, the rest of the body is discarded instead of failing the
/// exchange, so hyper still reads the answer that is waiting on the socket.
struct KeepReading<T> {
    inner: T,
    write_failed: bool,
}

impl<T> KeepReading<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            write_failed: false,
        }
    }
}

fn peer_gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
    )
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for KeepReading<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for KeepReading<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        if self.write_failed {
            return Poll::Ready(Ok(buf.len()));
        }
        match std::pin::Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Err(e)) if peer_gone(&e) => {
                self.write_failed = true;
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        if self.write_failed {
            return Poll::Ready(Ok(()));
        }
        match std::pin::Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(Err(e)) if peer_gone(&e) => {
                self.write_failed = true;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        if self.write_failed {
            return Poll::Ready(Ok(()));
        }
        match std::pin::Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Ready(Err(e)) if peer_gone(&e) => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_connection_is_said_plainly_once() {
        let raw = "IO error: peer closed connection without sending TLS close_notify: \
                   https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof";
        assert_eq!(
            plain_network_text(raw),
            "the connection was cut before the sync finished"
        );
        assert_eq!(
            plain_network_text("IO error: Broken pipe (os error 32)"),
            "the connection was cut before the sync finished"
        );
        assert_eq!(
            plain_network_text("Connection refused (os error 111)"),
            "Connection refused (os error 111)"
        );
        assert_eq!(
            plain_network_text("tls: bad thing: https://docs.rs/x#y"),
            "tls: bad thing"
        );
    }

    #[test]
    fn repeated_sources_are_not_appended_twice() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "IO error: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let addr = ServerAddr::parse("https://127.0.0.1:8443").unwrap();
        let e = Outer(std::io::Error::other("no route to host"));
        let DeviceError::Network { message, .. } = classify(&addr, None, &e) else {
            panic!("a network error");
        };
        assert_eq!(message, "IO error: no route to host");
    }

    #[test]
    fn server_addresses_parse_with_ports_and_ipv6() {
        let a = ServerAddr::parse("https://127.0.0.1:8443/").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("127.0.0.1", 8443));
        assert_eq!(a.url, "https://127.0.0.1:8443");
        let b = ServerAddr::parse("https://[::1]:9000").unwrap();
        assert_eq!(
            (b.host.as_str(), b.port, b.authority()),
            ("::1", 9000, "[::1]:9000")
        );
        let c = ServerAddr::parse("https://sprig.example.org").unwrap();
        assert_eq!(c.port, 443);
        assert!(ServerAddr::parse("http://x:1").is_err());
        assert!(ServerAddr::parse("not a url").is_err());
    }

    #[test]
    fn fingerprints_parse_in_the_forms_people_copy() {
        let fp = fingerprint(b"abc");
        let raw = parse_fingerprint(&fp).unwrap();
        assert_eq!(fingerprint(b"abc"), format!("sha256:{}", hex::encode(raw)));
        assert_eq!(
            parse_fingerprint(&fp.to_uppercase().replace("SHA256:", "")).unwrap(),
            raw
        );
        assert!(parse_fingerprint("sha256:1234").is_err());
    }
}
