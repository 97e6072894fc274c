//! The HTTPS server (docs/PROTOCOL-HTTP.md): one rustls listener that requests a client
//! certificate on every connection, hyper driving each connection with the peer's
//! certificate fingerprint attached to every request, and axum routes for enrolment, the
//! WebSocket sync, media and health.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::{Deserialize, Serialize};
use sprig_proto::{Hello, Lease, Limits, Message, ProtoError, ServerSession};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::admin::{AdminError, DataDir, code_hash, normalise_code, now_ms};
use crate::ca::{Ca, CaError, fingerprint};
use crate::docs::DeviceDocs;
use crate::media_store::{FsMediaStore, MediaStore, MediaStoreError};
use crate::policy::Policy;
use crate::store::{
    AuditEvent, CodeState, Contact, Device, DeviceStatus, MediaRecord, NewDevice, PinFailureRecord,
    Quarantine, Redeemed, ServerStore, StatusChange,
};

/// How the server runs.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The data directory made by `init`.
    pub data: DataDir,
    /// Sync frame limits.
    pub limits: Limits,
    /// Largest media upload accepted, in bytes.
    pub max_media_bytes: u64,
    /// Refused enrolment attempts allowed per source address per minute.
    pub enrol_failures_per_ip: usize,
    /// Refused enrolment attempts allowed in total per minute.
    pub enrol_failures_global: usize,
    /// Where media is kept; `None` (the default) is the data directory's `media/` folder.
    pub media: Option<Arc<dyn MediaStore>>,
}

impl ServeConfig {
    /// Defaults for the data directory `data`.
    #[must_use]
    pub fn new(data: DataDir) -> ServeConfig {
        ServeConfig {
            data,
            limits: Limits::default(),
            max_media_bytes: 512 * 1024 * 1024,
            enrol_failures_per_ip: 5,
            enrol_failures_global: 50,
            media: None,
        }
    }
}

/// The server could not start.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory is missing or unreadable.
    #[error(transparent)]
    Data(#[from] AdminError),
    /// The CA could not be loaded.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The TLS configuration could not be built from the stored certificates.
    #[error("the TLS setup failed: {0}; check server.pem and server.key in the data directory")]
    Tls(String),
    /// A file operation failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The media store could not be made ready.
    #[error(transparent)]
    Media(#[from] MediaStoreError),
}

/// The peer of a connection, attached to every request on it.
#[derive(Clone, Debug)]
struct Peer {
    addr: SocketAddr,
    /// `sha256:<hex>` of the verified client certificate, when one was presented.
    cert: Option<String>,
}

struct AppState {
    store: Arc<dyn ServerStore>,
    media: Arc<dyn MediaStore>,
    ca: Ca,
    config: ServeConfig,
    throttle: Mutex<Throttle>,
}

/// A JSON error: `{"code", "message"}` with its status.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn internal(e: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The server failed; try again later and tell the setting's administrator if it persists.",
        )
    }

    fn not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The server does not hold this; check the address.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(ErrorBody {
                code: self.code,
                message: &self.message,
            }),
        )
            .into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

/// Runs a blocking store operation off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(&e))
}

fn audit(store: &dyn ServerStore, actor: &str, device: Option<&str>, action: &str, detail: String) {
    let e = AuditEvent {
        at: now_ms(),
        actor: actor.into(),
        device: device.map(Into::into),
        action: action.into(),
        detail,
    };
    if let Err(err) = store.audit(&e) {
        tracing::error!(error = %err, action, "could not write the audit log");
    }
}

/// Builds the rustls server configuration: our certificate, client certificates requested
/// and verified against the setting CA when presented.
fn tls_config(data: &DataDir) -> Result<rustls::ServerConfig, ServeError> {
    let tls = |e: &dyn std::fmt::Display| ServeError::Tls(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca_der = CertificateDer::from_pem_slice(data.read(&data.ca_cert())?.as_bytes())
        .map_err(|e| tls(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der.clone()).map_err(|e| tls(&e))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| tls(&e))?;
    let mut chain = CertificateDer::pem_slice_iter(data.read(&data.server_cert())?.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls(&e))?;
    // The setting CA goes out with the server certificate: a device enrolling holds only the
    // CA's fingerprint, and must find that CA in the chain to pin it.
    chain.push(ca_der);
    let key = PrivateKeyDer::from_pem_slice(data.read(&data.server_key())?.as_bytes())
        .map_err(|e| tls(&e))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| tls(&e))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Serves the data directory's setting on `listener` until `shutdown` completes.
///
/// ```no_run
/// # async fn run() -> Result<(), sprig_server::ServeError> {
/// use sprig_server::{DataDir, ServeConfig, serve};
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// serve(listener, ServeConfig::new(DataDir::new("/srv/sprig")), std::future::pending()).await
/// # }
/// ```
///
/// # Errors
/// [`ServeError`] when the data directory, CA or TLS setup cannot be loaded. Errors on single
/// connections are logged, never fatal.
pub async fn serve(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let data = config.data.clone();
    let store: Arc<dyn ServerStore> = Arc::new(data.open_store()?);
    let ca = Ca::from_pem(&data.read(&data.ca_cert())?, &data.read(&data.ca_key())?)?;
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(&data)?));
    let media = config
        .media
        .clone()
        .unwrap_or_else(|| Arc::new(FsMediaStore::new(data.media())));
    media.prepare().await?;
    let state = Arc::new(AppState {
        store,
        media,
        ca,
        config,
        throttle: Mutex::new(Throttle::default()),
    });
    let app = Router::new()
        .route("/v1/health", get(health))
        .route("/v1/enrol", post(enrol))
        .route("/v1/sync", get(sync))
        .route("/v1/media/{sha}", put(media_put).get(media_get))
        .route("/v1/media/{sha}/thumbnail", get(media_thumbnail))
        .fallback(|| async { ApiError::not_found() })
        .with_state(state);
    tracing::info!(addr = ?listener.local_addr().ok(), "serving");

    tokio::pin!(shutdown);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, addr)) => {
                    conns.spawn(connection(tls.clone(), app.clone(), tcp, addr));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn connection(
    tls: tokio_rustls::TlsAcceptor,
    app: Router,
    tcp: tokio::net::TcpStream,
    addr: SocketAddr,
) {
    let stream = match tokio::time::timeout(Duration::from_secs(15), tls.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%addr, error = %e, "TLS handshake refused");
            return;
        }
        Err(_) => {
            tracing::debug!(%addr, "TLS handshake timed out");
            return;
        }
    };
    let peer = Peer {
        addr,
        cert: stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| fingerprint(c)),
    };
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        app.clone().oneshot(req)
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        // A client that never finishes its request headers does not hold a task forever.
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades()
        .await
    {
        tracing::debug!(%addr, error = %e, "connection ended with an error");
    }
}

// ---- authentication ------------------------------------------------------------------------

/// Which device route a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// The WebSocket sync: a device to be wiped is let in, to receive the wipe.
    Sync,
    /// Media upload and download.
    Media,
}

/// Refuses device sync from an address outside the setting's allow-list (read afresh, so a
/// policy change applies at the next request).
async fn check_network(st: &Arc<AppState>, peer: &Peer) -> Result<(), ApiError> {
    let store = st.store.clone();
    let policy = blocking(move || Policy::load(store.as_ref()))
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    let ip = peer.addr.ip().to_canonical();
    if policy.allows(ip) {
        return Ok(());
    }
    tracing::warn!(%ip, "device sync refused: network not on the allow-list");
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "network_not_allowed",
        format!(
            "sync refused: this network ({ip}) is not on the setting's allowed list; ask the manager"
        ),
    ))
}

/// The device behind a connection's client certificate, if it may use the device routes.
async fn authenticate(st: &Arc<AppState>, peer: &Peer, route: Route) -> Result<Device, ApiError> {
    let Some(fp) = peer.cert.clone() else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "client_certificate_required",
            "This needs an enrolled device's certificate; enrol the device first.",
        ));
    };
    let store = st.store.clone();
    let device = blocking(move || store.device_by_fingerprint(&fp))
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    match device {
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "device_unknown",
            "This device is not in the setting's register; enrol it again.",
        )),
        Some(d) if d.status.is_refused() => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "device_revoked",
            "This device has been revoked by the setting; ask a manager to enrol it again.",
        )),
        Some(d) if d.status == DeviceStatus::Quarantined => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "device_quarantined",
            QUARANTINED,
        )),
        Some(d) if d.status == DeviceStatus::WipePending && route == Route::Media => {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "device_wipe_pending",
                "This device is to be wiped; it must sync to carry out the wipe.",
            ))
        }
        Some(d) => Ok(d),
    }
}

// ---- health ----------------------------------------------------------------------------------

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"ok": true}))
}

// ---- enrolment -------------------------------------------------------------------------------

/// Refused enrolment attempts in the last minute, per source address and in total.
#[derive(Debug, Default)]
struct Throttle {
    per_ip: HashMap<IpAddr, VecDeque<Instant>>,
    global: VecDeque<Instant>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl Throttle {
    fn prune(q: &mut VecDeque<Instant>, now: Instant) {
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
    }

    fn retry_after(q: &VecDeque<Instant>, now: Instant) -> u64 {
        q.front().map_or(1, |t| {
            (WINDOW.saturating_sub(now.duration_since(*t))).as_secs() + 1
        })
    }

    /// `Some(seconds)` when `ip` must wait before trying again.
    fn check(&mut self, ip: IpAddr, now: Instant, per_ip: usize, global: usize) -> Option<u64> {
        Self::prune(&mut self.global, now);
        self.per_ip.retain(|_, q| {
            Self::prune(q, now);
            !q.is_empty()
        });
        if let Some(q) = self.per_ip.get(&ip)
            && q.len() >= per_ip
        {
            return Some(Self::retry_after(q, now));
        }
        (self.global.len() >= global).then(|| Self::retry_after(&self.global, now))
    }

    fn fail(&mut self, ip: IpAddr, now: Instant) {
        self.per_ip.entry(ip).or_default().push_back(now);
        self.global.push_back(now);
    }
}

#[derive(Deserialize)]
struct EnrolRequest {
    code: String,
    device_name: Option<String>,
    csr_pem: String,
    app_version: Option<String>,
}

#[derive(Serialize)]
struct EnrolResponse {
    device_id: String,
    certificate_pem: String,
    ca_pem: String,
}

async fn enrol(
    State(st): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    body: Bytes,
) -> Result<Json<EnrolResponse>, ApiError> {
    let ip = peer.addr.ip();
    let throttled = {
        let mut t = st
            .throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.check(
            ip,
            Instant::now(),
            st.config.enrol_failures_per_ip,
            st.config.enrol_failures_global,
        )
    };
    if let Some(secs) = throttled {
        tracing::warn!(%ip, "enrolment throttled");
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "enrol_throttled",
            format!("Too many wrong enrolment codes; wait {secs} seconds and try again."),
        );
        e.retry_after = Some(secs);
        return Err(e);
    }
    let req: EnrolRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "The enrolment request is not valid JSON with code and csr_pem ({e})."
        ))
    })?;
    let refuse = |st: &AppState, status, code, message: &str| {
        st.throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .fail(ip, Instant::now());
        audit(
            st.store.as_ref(),
            "anonymous",
            None,
            "enrol_refused",
            format!("reason={code} ip={ip}"),
        );
        ApiError::new(status, code, message)
    };
    let invalid = "This enrolment code is not valid; check it or ask a manager for a new one.";
    let Some(code) = normalise_code(&req.code) else {
        return Err(refuse(
            &st,
            StatusCode::UNAUTHORIZED,
            "enrol_code_invalid",
            invalid,
        ));
    };
    // The code first: an unknown, used or expired code costs the server no certificate work
    // (the CSR is not even parsed).
    let hash = code_hash(&code);
    let (store, h) = (st.store.clone(), hash.clone());
    let state = blocking(move || store.enrol_code_state(&h, now_ms()))
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    match state {
        CodeState::Valid => {}
        CodeState::Expired => {
            return Err(refuse(
                &st,
                StatusCode::GONE,
                "enrol_code_expired",
                "This enrolment code has expired; ask a manager for a new one.",
            ));
        }
        CodeState::Used => {
            return Err(refuse(
                &st,
                StatusCode::GONE,
                "enrol_code_used",
                "This enrolment code has already been used; ask a manager for a new one.",
            ));
        }
        _ => {
            return Err(refuse(
                &st,
                StatusCode::UNAUTHORIZED,
                "enrol_code_invalid",
                invalid,
            ));
        }
    }
    let device_id = uuid::Uuid::new_v4().hyphenated().to_string();
    let cert = st
        .ca
        .issue_device_cert(&req.csr_pem, &device_id)
        .map_err(|e| match e {
            CaError::BadCsr(_) => ApiError::bad_request(e.to_string()),
            other => ApiError::internal(&other),
        })?;
    let new = NewDevice {
        id: device_id.clone(),
        name: req.device_name.unwrap_or_default(),
        cert_serial: cert.serial.clone(),
        cert_fingerprint: cert.fingerprint.clone(),
        created_at: now_ms(),
        app_version: req.app_version,
    };
    let store = st.store.clone();
    let outcome = blocking(move || store.redeem_enrol_code(&hash, now_ms(), &new))
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    match outcome {
        Redeemed::Enrolled(d) => {
            audit(
                st.store.as_ref(),
                &format!("device:{}", d.id),
                Some(&d.id),
                "enrol",
                format!("serial={} ip={ip}", cert.serial),
            );
            tracing::info!(device = %d.id, "device enrolled");
            Ok(Json(EnrolResponse {
                device_id,
                certificate_pem: cert.pem,
                ca_pem: st.ca.cert_pem().to_owned(),
            }))
        }
        Redeemed::Expired => Err(refuse(
            &st,
            StatusCode::GONE,
            "enrol_code_expired",
            "This enrolment code has expired; ask a manager for a new one.",
        )),
        Redeemed::Used => Err(refuse(
            &st,
            StatusCode::GONE,
            "enrol_code_used",
            "This enrolment code has already been used; ask a manager for a new one.",
        )),
        _ => Err(refuse(
            &st,
            StatusCode::UNAUTHORIZED,
            "enrol_code_invalid",
            invalid,
        )),
    }
}

// ---- sync ------------------------------------------------------------------------------------

async fn sync(
    State(st): State<Arc<AppState>>,
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
const QUARANTINED: &str = "This tablet is quarantined: it sent a change it is not allowed to \
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
        if let Err(e) = run.docs.publish(&replaced) {
            tracing::error!(error = %e, "could not store the session's changes");
            return Step::Finish(error_frame(
                "store",
                "The server could not store this sync; nothing was lost on the tablet. Try again later and tell the setting's administrator if it persists.",
            ));
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
async fn current_status(st: &Arc<AppState>, device: &str) -> Option<DeviceStatus> {
    let (store, id) = (st.store.clone(), device.to_owned());
    match tokio::task::spawn_blocking(move || store.device(&id)).await {
        Ok(Ok(Some(d))) => Some(d.status),
        Ok(Ok(None)) => Some(DeviceStatus::Revoked),
        _ => None,
    }
}

async fn run_sync(st: Arc<AppState>, device: Device, mut socket: WebSocket) {
    let mut run = Some(SyncRun {
        session: ServerSession::new(st.config.limits.clone()),
        docs: DeviceDocs::new(st.store.clone(), &device.id),
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
            Ok(WsMessage::Binary(b)) => b,
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

// ---- media -----------------------------------------------------------------------------------

fn parse_sha(s: &str) -> Result<String, ApiError> {
    let s = s.to_ascii_lowercase();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(ApiError::bad_request(
            "The media address must be the file's SHA-256 as 64 hex digits.",
        ))
    }
}

#[derive(Serialize)]
struct MediaAckBody {
    sha256: String,
    size: u64,
}

fn media_error(e: &MediaStoreError) -> ApiError {
    if e.is_storage_full() {
        tracing::error!("media store is full");
        return ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_full",
            "The server's disk is full; keep the file on the device and tell the setting's administrator.",
        );
    }
    ApiError::internal(e)
}

async fn media_put(
    State(st): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    UrlPath(sha): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<MediaAckBody>, ApiError> {
    check_network(&st, &peer).await?;
    let device = authenticate(&st, &peer, Route::Media).await?;
    let sha = parse_sha(&sha)?;
    let kind = match headers
        .get("x-sprig-media-kind")
        .and_then(|v| v.to_str().ok())
    {
        Some(k @ ("photo" | "video")) => k.to_owned(),
        _ => {
            return Err(ApiError::bad_request(
                "Send the header X-Sprig-Media-Kind: photo or video.",
            ));
        }
    };
    let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return Err(ApiError::bad_request(
            "Send the upload with a Content-Length.",
        ));
    };
    let max = st.config.max_media_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("The file is over the server's limit of {max} bytes; it cannot be uploaded."),
        )
    };
    if len > max {
        return Err(too_large());
    }
    // Only what an observation on the server refers to is taken: a device cannot use the
    // server as a store for anything else.
    let (store, s2) = (st.store.clone(), sha.clone());
    let referenced = blocking(move || store.media_referenced(&s2))
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    if !referenced {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "media_unreferenced",
            "No observation on the server refers to this photo or video, so it was not \
             accepted; sync the observation first. The tablet keeps its copy.",
        ));
    }
    let store = st.store.clone();
    let s2 = sha.clone();
    let known = blocking(move || store.media(&s2))
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    if let Some(m) = known
        && st.media.contains(&sha).await.unwrap_or(false)
    {
        // Read the body (discarding it) before answering: a device still sending it would see
        // the connection closed instead of this acknowledgement, and keep the copy forever.
        let mut rest = body.into_data_stream();
        while let Some(Ok(_)) = rest.next().await {}
        note_acked(&st, &device.id).await?;
        audit(
            st.store.as_ref(),
            &format!("device:{}", device.id),
            Some(&device.id),
            "media_ack",
            format!("sha256={sha} size={} repeat=true", m.size),
        );
        return Ok(Json(MediaAckBody {
            sha256: sha,
            size: m.size,
        }));
    }

    // The store answers only once the file is durably stored under its name with its SHA-256
    // and size checked (media_store::MediaStore::put): only then may the device purge it.
    let stream = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other))
        .boxed();
    let size = match st.media.put(&sha, len, stream).await {
        Ok(size) => size,
        Err(MediaStoreError::TooLarge { .. }) => return Err(too_large()),
        Err(MediaStoreError::Short { got, .. }) => {
            return Err(ApiError::bad_request(format!(
                "The upload ended after {got} of {len} bytes; upload it again."
            )));
        }
        Err(MediaStoreError::HashMismatch) => {
            audit(
                st.store.as_ref(),
                &format!("device:{}", device.id),
                Some(&device.id),
                "media_refused",
                format!("sha256={sha} reason=hash_mismatch"),
            );
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "hash_mismatch",
                "The file's SHA-256 does not match its address; keep the original and upload it again.",
            ));
        }
        Err(e) => return Err(media_error(&e)),
    };
    let rec = MediaRecord {
        sha256: sha.clone(),
        size,
        kind,
        device: device.id.clone(),
        stored_at: now_ms(),
    };
    let store = st.store.clone();
    blocking(move || store.insert_media(&rec))
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    note_acked(&st, &device.id).await?;
    audit(
        st.store.as_ref(),
        &format!("device:{}", device.id),
        Some(&device.id),
        "media_upload",
        format!("sha256={sha} size={size}"),
    );
    Ok(Json(MediaAckBody { sha256: sha, size }))
}

/// The device will purge what the server just acknowledged: count it off its pending media.
async fn note_acked(st: &AppState, device: &str) -> Result<(), ApiError> {
    let store = st.store.clone();
    let device = device.to_owned();
    blocking(move || store.note_media_acked(&device))
        .await?
        .map_err(|e| ApiError::internal(&e))
}

async fn stored_media(st: &Arc<AppState>, peer: &Peer, sha: &str) -> Result<MediaRecord, ApiError> {
    check_network(st, peer).await?;
    authenticate(st, peer, Route::Media).await?;
    let sha = parse_sha(sha)?;
    let store = st.store.clone();
    blocking(move || store.media(&sha))
        .await?
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(ApiError::not_found)
}

fn bytes_response(body: Body, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn media_get(
    State(st): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    UrlPath(sha): UrlPath<String>,
) -> Result<Response, ApiError> {
    let rec = stored_media(&st, &peer, &sha).await?;
    let stream = st.media.get(&rec.sha256).await.map_err(|e| match e {
        MediaStoreError::NotFound => ApiError::not_found(),
        other => media_error(&other),
    })?;
    let ct = if rec.kind == "photo" {
        "image/jpeg"
    } else {
        "application/octet-stream"
    };
    Ok(bytes_response(Body::from_stream(stream), ct))
}

async fn media_thumbnail(
    State(st): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    UrlPath(sha): UrlPath<String>,
) -> Result<Response, ApiError> {
    let rec = stored_media(&st, &peer, &sha).await?;
    if rec.kind != "photo" {
        return Err(ApiError::not_found());
    }
    if let Ok(Some(bytes)) = st.media.thumbnail(&rec.sha256).await {
        return Ok(bytes_response(Body::from(bytes), "image/jpeg"));
    }
    let photo = crate::media_store::read_all(st.media.as_ref(), &rec.sha256)
        .await
        .map_err(|e| media_error(&e))?;
    let made =
        blocking(move || sprig_media::process_photo(&photo, &sprig_media::PhotoOptions::default()))
            .await?;
    let bytes = match made {
        Ok(p) => Bytes::from(p.thumbnail.bytes),
        Err(e) => {
            tracing::warn!(code = e.code(), "no thumbnail for a stored photo");
            return Err(ApiError::not_found());
        }
    };
    // A cache: a failure to keep it only costs the next request a new thumbnail.
    let _ = st.media.put_thumbnail(&rec.sha256, bytes.clone()).await;
    Ok(bytes_response(Body::from(bytes), "image/jpeg"))
}
