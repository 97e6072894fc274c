//! The HTTPS server (docs/PROTOCOL-HTTP.md): one rustls listener (`tls`) that requests a
//! client certificate on every connection, hyper driving each connection with the peer's
//! certificate fingerprint attached to every request, and axum routes by surface: the device
//! routes (`device`: enrolment, the WebSocket sync, media), health, and the parents' portal
//! (`portal`: the `/api/v1/` JSON API and the portal UI), which needs no client certificate. Errors are the
//! `{code, message}` JSON of `error`.

pub(crate) mod changes;
mod device;
mod error;
mod hosted;
mod metrics;
mod portal;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Request;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sprig_proto::Limits;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::admin::{AdminError, DataDir};
use crate::ca::{Ca, CaError, fingerprint};
use crate::media_store::{FsMediaStore, MediaStore, MediaStoreError};
use crate::store::ServerStore;

pub(crate) use error::{ApiError, audit, blocking};
pub use hosted::HostedConfig;
pub(crate) use tls::Peer;

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
    /// A portal session ends after this long without a request (30 minutes).
    pub portal_idle: Duration,
    /// A portal session ends this long after sign-in, however active (7 days).
    pub portal_absolute: Duration,
    /// A manager's console session ends after this long without a request (15 minutes).
    pub console_idle: Duration,
    /// A manager's console session ends this long after sign-in, however active (8 hours).
    pub console_absolute: Duration,
    /// Largest parent contribution accepted from the portal, in bytes: the whole multipart
    /// body (text and every photo and video together). 100 MiB: a couple of minutes of phone
    /// video.
    pub max_contribution_bytes: u64,
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
            portal_idle: Duration::from_secs(30 * 60),
            portal_absolute: Duration::from_secs(7 * 24 * 3600),
            console_idle: Duration::from_secs(15 * 60),
            console_absolute: Duration::from_secs(8 * 3600),
            max_contribution_bytes: 100 * 1024 * 1024,
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

/// One setting (tenant) being served: its store, media, CA, change feed, and the
/// server's configuration. Handlers get the one a request belongs to from [`Settings`].
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn ServerStore>,
    pub(crate) media: Arc<dyn MediaStore>,
    pub(crate) ca: Ca,
    pub(crate) config: ServeConfig,
    /// Announces changed documents to the devices watching.
    pub(crate) changes: Arc<changes::Changes>,
    /// The roster view journal changes are checked against, shared by the sessions.
    pub(crate) roster_views: Arc<crate::docs::RosterViews>,
    /// The roster and journal entries the portal reads, kept while unchanged.
    pub(crate) reads: Arc<crate::docs::ReadCache>,
}

/// The settings this server serves, and how a request finds its own: a device request by the
/// CA that issued its client certificate, a browser request by the host name it was sent to.
/// A single-setting server (a data directory) answers every request with its one setting.
pub(crate) enum Settings {
    /// A data directory's one setting.
    One(Arc<AppState>),
    /// Every setting of a hosted deployment's database.
    Hosted(Arc<hosted::Hosted>),
}

impl Settings {
    /// The setting of a device request: by its certificate's issuer, or without one by the
    /// host name it was sent to (`host`).
    pub(crate) fn for_device(&self, peer: &Peer, host: Option<&str>) -> Option<Arc<AppState>> {
        match self {
            Settings::One(st) => Some(st.clone()),
            Settings::Hosted(h) => h.for_device(peer, host),
        }
    }

    /// Whether the database and the media store answer now; what failed when not.
    pub(crate) async fn ready(&self) -> Result<(), String> {
        let st = match self {
            Settings::One(st) => st.clone(),
            Settings::Hosted(h) => {
                let pool = h.pool().clone();
                match tokio::task::spawn_blocking(move || pool.ping()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(format!("the database did not answer ({e})")),
                    Err(e) => return Err(format!("the database check failed ({e})")),
                }
                return h
                    .media()
                    .check()
                    .await
                    .map_err(|e| format!("the media store did not answer ({e})"));
            }
        };
        let store = st.store.clone();
        match tokio::task::spawn_blocking(move || store.meta("public_url")).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("the database did not answer ({e})")),
            Err(e) => return Err(format!("the database check failed ({e})")),
        }
        st.media
            .check()
            .await
            .map_err(|e| format!("the media store did not answer ({e})"))
    }

    /// The setting of a request sent to `host` (the `Host` header, without its port).
    #[allow(dead_code)] // The portal's routes will use it.
    pub(crate) fn for_host(&self, host: Option<&str>) -> Option<Arc<AppState>> {
        match self {
            Settings::One(st) => Some(st.clone()),
            Settings::Hosted(h) => h.for_host(host),
        }
    }
}

/// A browser request to a hosted deployment: answered by the portal of the setting at the host
/// name it was sent to, or as if nothing were there.
async fn hosted_portal(
    hosted: Arc<hosted::Hosted>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    use tower::ServiceExt as _;
    let sni = req.extensions().get::<Peer>().and_then(|p| p.sni.clone());
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| strip_port(h).to_owned())
        .or_else(|| req.uri().host().map(str::to_owned));
    match hosted.portal_for(sni.as_deref(), host.as_deref()) {
        Some(portal) => match portal.oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        },
        None => ApiError::not_found().into_response(),
    }
}

/// The setting a device request belongs to: an extractor over [`Settings`]. A request whose
/// setting is not served here is answered as if nothing were there.
pub(crate) struct DeviceSetting(pub(crate) Arc<AppState>);

impl axum::extract::FromRequestParts<Arc<Settings>> for DeviceSetting {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        settings: &Arc<Settings>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<Peer>()
            .ok_or_else(ApiError::not_found)?;
        let host = peer.sni.clone().or_else(|| {
            parts
                .headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(|h| strip_port(h).to_owned())
        });
        settings
            .for_device(peer, host.as_deref())
            .map(DeviceSetting)
            .ok_or_else(ApiError::not_found)
    }
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
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(tls::tls_config(&data)?));
    let media = config
        .media
        .clone()
        .unwrap_or_else(|| Arc::new(FsMediaStore::new(data.media())));
    media.prepare().await?;
    let store_for_changes = store.clone();
    let pruner = tokio::spawn(prune_forever(vec![store.clone()]));
    let (idle, absolute) = (config.portal_idle, config.portal_absolute);
    let setting = Arc::new(AppState {
        store,
        media,
        ca,
        config,
        changes: changes::Changes::start(store_for_changes),
        roster_views: Arc::default(),
        reads: Arc::default(),
    });
    let app = router(Arc::new(Settings::One(setting.clone())))
        .fallback(portal::assets)
        .merge(portal::router(setting, idle, absolute));
    let served = run(listener, tls, app, shutdown).await;
    pruner.abort();
    served
}

/// Serves every setting of a hosted deployment's database on `listener` until `shutdown`
/// completes: one replica of any number over the same database and media store. A device
/// request finds its setting by its client certificate's issuer, any other by its host name
/// (TLS SNI, else `Host`); settings created while it runs are served within seconds. Events
/// (revocations, wipes) written by any process reach this replica's open connections through
/// the event table, polled once a second while anyone watches; where the database has
/// LISTEN/NOTIFY a notification wakes the poll at once.
///
/// # Errors
/// [`ServeError`] when the settings cannot be read or a setting's TLS material is unusable.
pub async fn serve_hosted(
    listener: TcpListener,
    config: HostedConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let hosted = Arc::new(hosted::Hosted::new(config));
    hosted.refresh().await?;
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(hosted.tls_config()?));
    let refresher = tokio::spawn(hosted.clone().refresh_forever());
    let woken = hosted.clone();
    let listener_task = hosted.pool().spawn_listener(move || {
        for st in woken.states() {
            st.changes.wake();
        }
    });
    let pruner = {
        let pool = hosted.pool().clone();
        let settings = hosted.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PRUNE_EVERY);
            loop {
                tick.tick().await;
                let stores: Vec<_> = settings
                    .states()
                    .iter()
                    .map(|st| st.store.clone())
                    .collect();
                let _ = tokio::task::spawn_blocking(move || {
                    for s in &stores {
                        if let Err(e) =
                            crate::manage::mark_leavers(s.as_ref(), crate::admin::now_ms())
                        {
                            tracing::warn!(error = %e, "could not mark today's leavers");
                        }
                    }
                })
                .await;
                let pool = pool.clone();
                let before = crate::admin::now_ms() - TRANSIENT_KEEP_MS;
                if let Ok(Err(e)) =
                    tokio::task::spawn_blocking(move || pool.prune_transient(before)).await
                {
                    tracing::warn!(error = %e, "could not prune old attempts and events");
                }
            }
        })
    };
    let served = run(
        listener,
        tls,
        // Everything that is not a device route is a setting's parents' portal, found by the
        // host name the browser asked for.
        router(Arc::new(Settings::Hosted(hosted.clone())))
            .fallback(move |req: axum::extract::Request| hosted_portal(hosted.clone(), req)),
        shutdown,
    )
    .await;
    refresher.abort();
    pruner.abort();
    if let Some(l) = listener_task {
        l.abort();
    }
    served
}

/// `host` without a `:port`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split(']').next().map_or(host, |h| &h[1..]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn router(state: Arc<Settings>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/v1/enrol", post(device::enrol::enrol))
        .route("/v1/sync", get(device::sync::sync))
        .route("/v1/watch", get(device::watch::watch))
        .route(
            "/v1/media/{sha}",
            put(device::media::media_put).get(device::media::media_get),
        )
        .route(
            "/v1/media/{sha}/thumbnail",
            get(device::media::media_thumbnail),
        )
        .with_state(state)
}

async fn run(
    listener: TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    app: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
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
    // Sync sessions are turns of small frames: send each at once instead of waiting for the
    // peer's delayed ACK (Nagle), which cost ≈ 40 ms a turn.
    let _ = tcp.set_nodelay(true);
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
    let conn = stream.get_ref().1;
    let leaf = conn.peer_certificates().and_then(|c| c.first());
    let peer = Peer {
        addr,
        cert: leaf.map(|c| fingerprint(c)),
        issuer: leaf.and_then(hosted::issuer_of).map(Arc::from),
        sni: conn.server_name().map(str::to_ascii_lowercase),
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

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"ok": true}))
}

async fn metrics_text() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(),
    )
}

/// How long attempt counters and events are kept: far longer than any throttle window or
/// than a replica takes to read an event.
const TRANSIENT_KEEP_MS: i64 = 24 * 60 * 60 * 1000;
/// How often they are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(10 * 60);

/// Marks the children whose leaving day has come as left, and forgets old attempt counters
/// and events, every [`PRUNE_EVERY`], until aborted.
async fn prune_forever(stores: Vec<Arc<dyn ServerStore>>) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let stores = stores.clone();
        let before = crate::admin::now_ms() - TRANSIENT_KEEP_MS;
        let pruned = tokio::task::spawn_blocking(move || {
            for s in &stores {
                // A leaving date set ahead takes effect on its day.
                if let Err(e) = crate::manage::mark_leavers(s.as_ref(), crate::admin::now_ms()) {
                    tracing::warn!(error = %e, "could not mark today's leavers");
                }
            }
            stores
                .iter()
                .map(|s| s.prune_transient(before))
                .sum::<Result<u64, _>>()
        })
        .await;
        match pruned {
            Ok(Ok(n)) if n > 0 => tracing::debug!(rows = n, "pruned old attempts and events"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not prune old attempts and events"),
            Err(e) => tracing::warn!(error = %e, "the pruning task failed"),
        }
    }
}

/// `GET /v1/ready`: 200 when the database and the media store answer now, 503 (with what
/// failed) when either does not; what a load balancer asks before sending a replica traffic.
async fn ready(
    axum::extract::State(settings): axum::extract::State<Arc<Settings>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    settings.ready().await.map_err(|what| {
        tracing::warn!(%what, "not ready");
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("This server cannot serve now: {what}."),
        )
    })?;
    Ok(Json(serde_json::json!({"ready": true})))
}
