//! `POST /v1/enrol`: a one-time code and a CSR in, a device certificate from the setting CA
//! out; refused codes are throttled per address and in total.

use axum::Json;
use axum::body::Bytes;
use axum::extract::Extension;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::admin::{code_hash, normalise_code, now_ms};
use crate::ca::CaError;
use crate::http::{ApiError, AppState, DeviceSetting, Peer, audit, blocking};
use crate::store::{Attempts, CodeState, NewDevice, Redeemed, ServerStore, StoreError};

/// Refused enrolment attempts are counted in the setting's database (scope
/// [`SCOPE_IP`] per source address, [`SCOPE_ALL`] in total), so every replica serving the
/// setting, and a restarted one, sees the same count.
const WINDOW_MS: i64 = 60_000;
/// Refused enrolments from one source address.
pub(crate) const SCOPE_IP: &str = "enrol_ip";
/// Refused enrolments from anywhere (key `""`).
pub(crate) const SCOPE_ALL: &str = "enrol_all";

/// `Some(seconds)` when `ip` must wait before trying again: `per_ip` refusals from it, or
/// `global` in all, in the last minute.
fn throttled(
    store: &dyn ServerStore,
    ip: &str,
    now: i64,
    per_ip: usize,
    global: usize,
) -> Result<Option<u64>, StoreError> {
    let since = now - WINDOW_MS + 1;
    let wait = |a: Attempts| {
        let oldest = a.oldest.unwrap_or(now);
        u64::try_from((oldest + WINDOW_MS - now).max(0) / 1000).unwrap_or(0) + 1
    };
    let by_ip = store.attempts_since(SCOPE_IP, ip, since)?;
    if by_ip.count >= per_ip as u64 {
        return Ok(Some(wait(by_ip)));
    }
    let all = store.attempts_since(SCOPE_ALL, "", since)?;
    Ok((all.count >= global as u64).then(|| wait(all)))
}

/// Counts one refused enrolment from `ip`.
fn count_refusal(store: &dyn ServerStore, ip: &str, now: i64) -> Result<(), StoreError> {
    store.record_attempt(SCOPE_IP, ip, now)?;
    store.record_attempt(SCOPE_ALL, "", now)
}

#[derive(Deserialize)]
struct EnrolRequest {
    code: String,
    device_name: Option<String>,
    csr_pem: String,
    app_version: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct EnrolResponse {
    device_id: String,
    certificate_pem: String,
    ca_pem: String,
}

pub(crate) async fn enrol(
    DeviceSetting(st): DeviceSetting,
    Extension(peer): Extension<Peer>,
    body: Bytes,
) -> Result<Json<EnrolResponse>, ApiError> {
    let ip = peer.addr.ip();
    let ip_key = ip.to_canonical().to_string();
    let (store, key) = (st.store.clone(), ip_key.clone());
    let (per_ip, global) = (
        st.config.enrol_failures_per_ip,
        st.config.enrol_failures_global,
    );
    let throttled = blocking(move || throttled(store.as_ref(), &key, now_ms(), per_ip, global))
        .await?
        .map_err(|e| ApiError::internal(&e))?;
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
        if let Err(e) = count_refusal(st.store.as_ref(), &ip_key, now_ms()) {
            tracing::error!(error = %e, "could not count a refused enrolment");
        }
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
