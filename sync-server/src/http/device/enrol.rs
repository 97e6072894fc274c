//! `POST /v1/enrol`: a one-time code and a CSR in, a device certificate from the setting CA
//! out; refused codes are throttled per address and in total.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::Extension;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::admin::{code_hash, normalise_code, now_ms};
use crate::ca::CaError;
use crate::http::{ApiError, AppState, DeviceSetting, Peer, audit, blocking};
use crate::store::{CodeState, NewDevice, Redeemed};

/// Refused enrolment attempts in the last minute, per source address and in total.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
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
