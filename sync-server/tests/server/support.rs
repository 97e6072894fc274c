//! A real server on 127.0.0.1:0 in this process, and clients built from rustls, hyper and
//! tokio-tungstenite.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sprig_core::{ChildId, Consent, Role, StaffId};
use sprig_server::store::Device;
use sprig_server::{DataDir, ServeConfig, ServerStore, SqliteStore, admin};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub struct TestServer {
    pub _dir: tempfile::TempDir,
    pub data: DataDir,
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub ca_fingerprint: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), sprig_server::ServeError>>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut ServeConfig)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("data"));
        let init = admin::init(&data, "Acorn Pre-School", None).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut config = ServeConfig::new(data.clone());
        tune(&mut config);
        let handle = tokio::spawn(sprig_server::serve(listener, config, async {
            let _ = stopped.await;
        }));
        TestServer {
            ca_pem: std::fs::read_to_string(data.ca_cert()).unwrap(),
            ca_fingerprint: init.ca_fingerprint,
            _dir: dir,
            data,
            addr,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// A server over an existing data directory (`keep` holds it for the test's length).
    pub async fn serve_existing(data: DataDir, keep: tempfile::TempDir) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(sprig_server::serve(
            listener,
            ServeConfig::new(data.clone()),
            async {
                let _ = stopped.await;
            },
        ));
        let ca_pem = std::fs::read_to_string(data.ca_cert()).unwrap();
        let der = CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap();
        TestServer {
            ca_fingerprint: sprig_server::ca::fingerprint(&der),
            ca_pem,
            _dir: keep,
            data,
            addr,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// A second connection to the server's database, as an admin command would open.
    pub fn store(&self) -> SqliteStore {
        self.data.open_store().unwrap()
    }

    /// Records that an entry references media `sha` (hex), as a synced observation would:
    /// only such media may be uploaded.
    pub fn reference_media(&self, sha: &str) {
        let child = ChildId::new_random();
        self.store()
            .add_media_refs(&[(sha.to_owned(), sprig_proto::DocId::Journal(child))])
            .unwrap();
    }

    pub fn enrol_code(&self, name: &str) -> String {
        admin::enrol_code(
            &self.data,
            &self.store(),
            name,
            admin::DEFAULT_CODE_TTL,
            &sprig_server::By::cli(),
        )
        .unwrap()
        .code
    }

    /// A key worker and a child with photo consent.
    pub fn seed(&self) -> (StaffId, ChildId) {
        let store = self.store();
        let staff =
            admin::staff_add(&store, "Amara Okafor", Role::Practitioner, "2468", None).unwrap();
        let child = admin::child_add(
            &store,
            "Test Child",
            staff.as_str(),
            Some("Ladybirds"),
            Consent::Yes,
            Some("2022-04-01"),
        )
        .unwrap();
        (staff, child)
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }

    /// Stops the server and serves the same data directory again, in a new server with
    /// nothing of the first one's memory, on a new port.
    pub async fn restarted(mut self) -> TestServer {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(stop);
        self.handle = Some(tokio::spawn(sprig_server::serve(
            listener,
            ServeConfig::new(self.data.clone()),
            async {
                let _ = stopped.await;
            },
        )));
        self
    }

    pub fn devices(&self) -> Vec<Device> {
        self.store().list_devices().unwrap()
    }
}

/// A client certificate and key.
#[derive(Clone)]
pub struct Identity {
    pub device_id: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A client config trusting exactly the CA `ca_pem` (the device's pin), optionally presenting
/// a client certificate.
pub fn client_config(ca_pem: &str, identity: Option<&Identity>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match identity {
        None => b.with_no_client_auth(),
        Some(id) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(id.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
    })
}

pub async fn tls_connect(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    tls_connect_to(addr, cfg, "localhost").await
}

/// [`tls_connect`] asking for server name `host` (SNI), as a device of a hosted setting does.
pub async fn tls_connect_to(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    host: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(cfg)
        .connect(ServerName::try_from(host.to_owned()).unwrap(), tcp)
        .await
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The error code of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// One HTTP/1.1 request over a fresh TLS connection; `Err` carries TLS or HTTP failures.
pub async fn request(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Reply, String> {
    request_to(addr, "localhost", cfg, method, path, headers, body).await
}

/// [`request`] sent to host name `host` (SNI and `Host`).
pub async fn request_to(
    addr: SocketAddr,
    host: &str,
    cfg: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Reply, String> {
    let tls = tls_connect_to(addr, cfg, host)
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("{e:?}"))?;
    let conn = tokio::spawn(conn);
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host)
        .header("content-length", body.len().to_string());
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let res = match send
        .send_request(b.body(Full::new(Bytes::from(body))).unwrap())
        .await
    {
        Ok(r) => r,
        // The connection's own error (e.g. a TLS alert) says more than "not ready".
        Err(e) => {
            return Err(match conn.await {
                Ok(Err(ce)) => format!("{ce:?}"),
                _ => format!("{e:?}"),
            });
        }
    };
    let status = res.status();
    let headers = res.headers().clone();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{e:?}"))?
        .to_bytes()
        .to_vec();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// A device key pair and the PEM CSR for it.
pub fn key_and_csr() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    (key.serialize_pem(), csr)
}

pub async fn post_enrol(server: &TestServer, code: &str, csr: &str) -> Reply {
    let body = serde_json::json!({
        "code": code,
        "device_name": "tablet",
        "csr_pem": csr,
        "app_version": "0.1.0",
    });
    request(
        server.addr,
        client_config(&server.ca_pem, None),
        "POST",
        "/v1/enrol",
        &[("content-type", "application/json")],
        serde_json::to_vec(&body).unwrap(),
    )
    .await
    .unwrap()
}

/// Enrols a device with a fresh code.
pub async fn enrol(server: &TestServer, name: &str) -> Identity {
    let code = server.enrol_code(name);
    let (key_pem, csr) = key_and_csr();
    let r = post_enrol(server, &code, &csr).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let j = r.json();
    Identity {
        device_id: j["device_id"].as_str().unwrap().to_owned(),
        cert_pem: j["certificate_pem"].as_str().unwrap().to_owned(),
        key_pem,
    }
}
