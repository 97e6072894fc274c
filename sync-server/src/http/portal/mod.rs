//! The parents' portal on the device listener: the JSON API under `/api/v1/` (`api`), the
//! managers' console API under `/api/v1/admin/` (`console`), their cookie sessions over the
//! server store (`session`), the Origin/Sec-Fetch-Site CSRF check
//! on every state-changing request (tower-http's `CsrfLayer`), the OpenAPI document generated
//! from the handlers (utoipa) at `/api/v1/openapi.json`, and the built portal UI
//! (`ui/dist/portal`) embedded in the binary and served at `/`.
//!
//! Every portal response carries a strict Content-Security-Policy (nothing but this origin;
//! no inline script or style, no framing) and `Cache-Control: no-store`.

mod account;
mod api;
mod console;
mod contributions;
mod events;
mod extract;
mod manage;
mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tower_http::csrf::CsrfLayer;
use tower_sessions::SessionManagerLayer;
use tower_sessions::cookie::SameSite;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState};

pub(crate) use session::COOKIE;

/// What the portal's handlers share: the setting served and the session lifetimes.
pub(crate) struct PortalState {
    pub(crate) setting: Arc<AppState>,
    /// Idle expiry, ms.
    pub(crate) idle_ms: i64,
    /// Absolute expiry after sign-in, ms.
    pub(crate) absolute_ms: i64,
    /// A manager's session: idle expiry, ms.
    pub(crate) console_idle_ms: i64,
    /// A manager's session: absolute expiry after sign-in, ms.
    pub(crate) console_absolute_ms: i64,
    /// Open live-update streams per session.
    pub(crate) streams: events::Streams,
    /// Journal pages projected at once, one per core: each loads and materialises a whole
    /// journal on the blocking pool, and more at once only adds threads and memory
    /// (docs/BENCHMARKS.md, "Parents' portal").
    pub(crate) journal_views: tokio::sync::Semaphore,
    /// Password checks run at once, one per core: each Argon2id check holds 19 MiB, and 500
    /// sign-ins at once took the server past 1.2 GB (docs/BENCHMARKS.md, "Parents' portal");
    /// the rest wait their turn instead.
    pub(crate) password_checks: tokio::sync::Semaphore,
}

/// The strict policy for the portal's pages and API: scripts, styles, fonts, images and
/// media from this origin only; no plugins, no framing, no inline code.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob:; media-src 'self'; font-src 'self'; connect-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sprig parents' portal API",
        description = "Cookie session; every state-changing request passes the Origin/Sec-Fetch-Site \
                       CSRF check. An id that is not the signed-in parent's own answers 404. \
                       Everything under /api/v1/admin/ (the managers' console) answers 404 to \
                       anyone who is not a manager of this setting signed in with a second factor.",
    ),
    components(schemas(api::ErrorBody))
)]
struct ApiDoc;

/// The built portal UI (`cd ui && npm run build`), embedded so one binary self-hosts it.
/// Built without it, the server still runs and `/` answers 404.
#[derive(rust_embed::RustEmbed)]
#[folder = "../ui/dist/portal"]
#[allow_missing = true]
struct Assets;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The API routes and their OpenAPI document; a contribution's whole body may be up to
/// `max_upload` bytes (every other request keeps axum's 2 MB default).
fn api_router(max_upload: usize) -> (Router<Arc<PortalState>>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::create_session, api::delete_session))
        .routes(routes!(api::list_sessions))
        .routes(routes!(api::end_session))
        .routes(routes!(api::me))
        .routes(routes!(api::get_agreement, api::accept_agreement))
        .routes(routes!(api::set_consent))
        .routes(routes!(api::journal))
        .routes(routes!(api::media))
        .routes(routes!(api::reply))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(contributions::create, contributions::list))
                .layer(axum::extract::DefaultBodyLimit::max(max_upload)),
        )
        .routes(routes!(events::events))
        .routes(routes!(account::mfa))
        .routes(routes!(account::totp_start, account::totp_off))
        .routes(routes!(account::totp_confirm))
        .routes(routes!(account::get_invitation, account::accept_invitation))
        .routes(routes!(console::devices))
        .routes(routes!(console::enrol_code))
        .routes(routes!(console::revoke))
        .routes(routes!(console::wipe))
        .routes(routes!(console::retire))
        .routes(routes!(console::release))
        .routes(routes!(console::coverage))
        .routes(routes!(console::contributions))
        .routes(routes!(console::approve))
        .routes(routes!(console::reject))
        .routes(routes!(manage::rooms))
        .routes(routes!(manage::children, manage::add_child))
        .routes(routes!(manage::change_child))
        .routes(routes!(manage::staff, manage::add_staff))
        .routes(routes!(manage::change_staff))
        .routes(routes!(manage::parents, manage::invite))
        .routes(routes!(manage::reinvite))
        .routes(routes!(manage::link))
        .routes(routes!(manage::unlink))
        .routes(routes!(manage::offsite))
        .routes(routes!(manage::custody))
        .routes(routes!(manage::audit))
        .routes(routes!(manage::audit_csv))
        .routes(routes!(manage::policy, manage::set_policy))
        .routes(routes!(manage::media))
        .split_for_parts();
    utoipa::Modify::modify(&extract::BadRequests, &mut doc);
    (router, doc)
}

/// The portal's routes for `setting`: the API (with sessions and the CSRF check) and the UI.
pub(crate) fn router(setting: Arc<AppState>, idle: Duration, absolute: Duration) -> Router {
    let sessions = SessionManagerLayer::new(session::StoreSessions::new(setting.store.clone()))
        .with_name(COOKIE)
        .with_secure(true)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_path("/");
    let max_upload = usize::try_from(setting.config.max_contribution_bytes).unwrap_or(usize::MAX);
    let state = Arc::new(PortalState {
        console_idle_ms: millis(setting.config.console_idle),
        console_absolute_ms: millis(setting.config.console_absolute),
        setting,
        idle_ms: millis(idle),
        absolute_ms: millis(absolute),
        streams: events::Streams::default(),
        journal_views: tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        ),
        password_checks: tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        ),
    });
    let (api, doc) = api_router(max_upload);
    let doc = Arc::new(doc.to_pretty_json().unwrap_or_default());
    let csrf = CsrfLayer::new().with_rejection_response(|_e| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "This request came from another site and was refused.",
        )
        .into_response()
    });
    api.route(
        "/api/v1/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    doc.as_ref().clone(),
                )
            }
        }),
    )
    .layer(sessions)
    .layer(csrf)
    .with_state(state)
    .layer(axum::middleware::map_response(portal_headers))
}

/// Headers on every portal response.
async fn portal_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    r
}

/// Serves the portal UI's files: `/` is its page; any other path that is not a built file is
/// the JSON 404 every route answers with.
pub(crate) async fn assets(method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::not_found().into_response();
    }
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let Some(file) = Assets::get(path) else {
        return ApiError::not_found().into_response();
    };
    let ct = match path.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("css") => "text/css",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("json") => "application/json",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    };
    let mut r = Response::new(Body::from(file.data.into_owned()));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    portal_headers(r).await
}
