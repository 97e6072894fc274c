//! The device routes: enrolment (`enrol`), the WebSocket sync (`sync`) and media (`media`),
//! with what they share: the network allow-list and the device behind a client certificate.

pub(crate) mod enrol;
pub(crate) mod media;
pub(crate) mod sync;
pub(crate) mod watch;

use std::sync::Arc;

use axum::http::StatusCode;

use super::{ApiError, AppState, Peer, blocking};
use crate::policy::Policy;
use crate::store::{Device, DeviceStatus};

pub(crate) use sync::QUARANTINED;

/// Which device route a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// The WebSocket sync: a device to be wiped is let in, to receive the wipe.
    Sync,
    /// Media upload and download.
    Media,
}

/// Refuses device sync from an address outside the setting's allow-list (read afresh, so a
/// policy change applies at the next request), unless a manager has let this device sync off
/// site until a time still to come.
pub(crate) async fn check_network(st: &Arc<AppState>, peer: &Peer) -> Result<(), ApiError> {
    let store = st.store.clone();
    let policy = blocking(move || Policy::load(store.as_ref()))
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    let ip = peer.addr.ip().to_canonical();
    if policy.allows(ip) {
        return Ok(());
    }
    if let Some(fp) = peer.cert.clone() {
        let store = st.store.clone();
        let device = blocking(move || store.device_by_fingerprint(&fp))
            .await?
            .map_err(|e| ApiError::internal(&e))?;
        if device
            .and_then(|d| d.offsite_until)
            .is_some_and(|until| until > crate::admin::now_ms())
        {
            return Ok(());
        }
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
pub(crate) async fn authenticate(
    st: &Arc<AppState>,
    peer: &Peer,
    route: Route,
) -> Result<Device, ApiError> {
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
