//! The `{code, message}` JSON errors every route answers with, and small helpers the handlers
//! share.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::admin::now_ms;
use crate::store::{AuditEvent, ServerStore};

/// A JSON error: `{"code", "message"}` with its status.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn internal(e: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The server failed; try again later and tell the setting's administrator if it persists.",
        )
    }

    pub(crate) fn not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The server does not hold this; check the address.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        super::metrics::error(self.status.as_u16());
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
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(&e))
}

pub(crate) fn audit(
    store: &dyn ServerStore,
    actor: &str,
    device: Option<&str>,
    action: &str,
    detail: String,
) {
    let e = AuditEvent {
        at: now_ms(),
        actor: actor.into(),
        device: device.map(Into::into),
        action: action.into(),
        detail,
        client: None,
    };
    if let Err(err) = store.audit(&e) {
        tracing::error!(error = %err, action, "could not write the audit log");
    }
}
