//! Account security: the TOTP second factor (a parent's set-up, confirm, turn off; the code
//! step of a sign-in; a manager's, set up at their first sign-in, with one-time recovery
//! codes, and asked for afresh before a step that cannot be undone) and invitations (look one
//! up, set the password with it).
//!
//! A code is six digits for a 30-second step (RFC 6238, through totp-rs), accepted one step
//! either side for clock drift, and each step at most once: the store keeps the newest step
//! used and refuses it or an earlier one, atomically. Wrong codes count toward the same lockout
//! as wrong passwords. The secret leaves the server once, in the set-up's answer, while it is
//! not yet on.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sprig_core::ParentId;
use sprig_proto::DocId;
use totp_rs::{Builder, Totp};
use utoipa::ToSchema;

use super::PortalState;
use super::api::{ErrorBody, SignedInBody, count_failure, locked_for, run, signed_in, store_err};
use super::extract::JsonBody;
use super::session::{HalfSignedIn, Login, Manager, SignedIn, session_error};
use crate::admin::{invitation_hash, is_invitation_token, now_ms};
use crate::docs::{AnyDoc, load_doc};
use crate::http::{ApiError, AppState, Peer, blocking};
use crate::passwords;
use crate::store::{StoreError, TotpRecord};

/// The issuer an authenticator app shows beside the account.
const ISSUER: &str = "Sprig";
/// Bytes of a new TOTP secret (160 bits, RFC 4226's recommendation).
const SECRET_BYTES: usize = 20;

// ---- codes ----

/// `{code}`: six digits from the authenticator app (spaces allowed).
#[derive(Deserialize, ToSchema)]
pub(crate) struct CodeBody {
    code: String,
}

impl std::fmt::Debug for CodeBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeBody").finish_non_exhaustive()
    }
}

/// The six digits of a typed code, or `None` when it cannot be one (checked before any work).
fn normalise_code(typed: &str) -> Option<String> {
    if typed.len() > 16 {
        return None;
    }
    let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

fn totp_of(secret: &[u8], account: &str) -> Result<Totp, ApiError> {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_account_name(account.replace(':', " "))
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| ApiError::internal(&e))
}

/// The step whose code `code` is (now, or one step either side), if any.
fn matching_step(secret: &[u8], code: &str, now_ms: i64) -> Result<Option<i64>, ApiError> {
    let Some(code) = normalise_code(code) else {
        return Ok(None);
    };
    let totp = totp_of(secret, "")?;
    let now_s = u64::try_from(now_ms / 1000).unwrap_or(0);
    Ok(totp
        .check(&code, now_s)
        .and_then(|step| i64::try_from(step).ok()))
}

fn wrong_code() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "wrong_code",
        "That code is not right. Enter the 6-digit code your authenticator app shows now.",
    )
}

fn code_used() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "code_used",
        "That code has already been used. Wait for the next code in your authenticator app, then enter it.",
    )
}

fn locked_now() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "locked",
        "Too many wrong passwords or codes: this account is locked for 15 minutes. Sign in again later.",
    )
}

/// How a code was judged.
enum Judged {
    Accepted,
    /// An unused recovery code, now used.
    Recovery,
    Wrong,
    Replayed,
}

/// Checks `code` against `principal`'s secret and, when right, uses its step (turning the
/// second factor on when `enable`).
async fn judge(
    setting: &Arc<AppState>,
    principal: &str,
    code: &str,
    enable: bool,
) -> Result<Option<Judged>, ApiError> {
    let p = principal.to_owned();
    let Some(rec) = run(setting, move |s| s.totp(&p))
        .await?
        .map_err(|e| store_err(&e))?
    else {
        return Ok(None);
    };
    let Some(step) = matching_step(&rec.secret, code, now_ms())? else {
        return Ok(Some(Judged::Wrong));
    };
    let p = principal.to_owned();
    let fresh = run(setting, move |s| s.use_totp_step(&p, step, enable))
        .await?
        .map_err(|e| store_err(&e))?;
    Ok(Some(if fresh {
        Judged::Accepted
    } else {
        Judged::Replayed
    }))
}

/// The signed-in parent's lockout key: their address.
async fn lockout_key(setting: &Arc<AppState>, parent: &ParentId) -> Result<String, ApiError> {
    let p = parent.to_string();
    Ok(run(setting, move |s| s.parent_email(&p))
        .await?
        .map_err(|e| store_err(&e))?
        .unwrap_or_else(|| format!("parent:{parent}")))
}

/// Counts a wrong or replayed code of a signed-in parent; a lock ends the session too.
async fn refuse_code(
    who: &SignedIn,
    peer: &Peer,
    why: ApiError,
    what: &'static str,
) -> Result<ApiError, ApiError> {
    let key = lockout_key(&who.setting, &who.parent).await?;
    let locked = count_failure(
        &who.setting,
        key,
        peer.addr.ip().to_string(),
        now_ms(),
        what,
    )
    .await?;
    if locked {
        who.session.flush().await.map_err(|e| session_error(&e))?;
        return Ok(locked_now());
    }
    Ok(ApiError {
        status: StatusCode::BAD_REQUEST,
        ..why
    })
}

/// `principal`'s TOTP record: `Some(enabled)`, `None` when there is none.
async fn totp_state(setting: &Arc<AppState>, principal: &str) -> Result<Option<bool>, ApiError> {
    let p = principal.to_owned();
    Ok(run(setting, move |s| s.totp(&p))
        .await?
        .map_err(|e| store_err(&e))?
        .map(|t| t.enabled))
}

/// A signed-in parent's code for a change to their second factor: `Ok` when accepted (or when
/// there is no record to check it against), else the refusal, counted.
async fn require_code(
    who: &SignedIn,
    peer: &Peer,
    principal: &str,
    code: &str,
    enable: bool,
) -> Result<(), ApiError> {
    let why = match judge(&who.setting, principal, code, enable).await? {
        Some(Judged::Accepted | Judged::Recovery) | None => return Ok(()),
        Some(Judged::Replayed) => code_used(),
        Some(Judged::Wrong) => wrong_code(),
    };
    Err(refuse_code(who, peer, why, "portal_totp_refused").await?)
}

// ---- recovery codes ----

/// Recovery codes given when a manager's second factor is turned on.
pub(crate) const RECOVERY_CODES: usize = 10;
/// Their alphabet: lower-case Crockford base32 (no i, l, o, u), 5 bits a character; a code is
/// 8 of them, `xxxx-xxxx` (40 bits).
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A typed recovery code, normalised (case, spaces and hyphens ignored), or `None` when it
/// cannot be one.
fn normalise_recovery(typed: &str) -> Option<String> {
    if typed.len() > 32 {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (code.len() == 8 && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))).then_some(code)
}

/// How a recovery code is stored: the SHA-256 of the login and the code. 40 random bits
/// tried online against the lockout cannot be guessed; a slow hash would guard only a copy of
/// the database, which holds the TOTP secret itself anyway.
fn recovery_hash(principal: &str, normalised: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        format!("{principal}\n{normalised}").as_bytes(),
    ))
}

/// Makes `principal`'s recovery codes anew (the old ones stop working) and returns them, to
/// be shown once.
async fn new_recovery_codes(
    setting: &Arc<AppState>,
    principal: &str,
) -> Result<Vec<String>, ApiError> {
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let bytes: [u8; 8] = rand::random();
            let c: String = bytes
                .iter()
                .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)]))
                .collect();
            format!("{}-{}", &c[..4], &c[4..])
        })
        .collect();
    let hashes: Vec<String> = codes
        .iter()
        .filter_map(|c| normalise_recovery(c))
        .map(|c| recovery_hash(principal, &c))
        .collect();
    let p = principal.to_owned();
    run(setting, move |s| {
        s.set_recovery_codes(&p, &hashes, now_ms())
    })
    .await?
    .map_err(|e| store_err(&e))?;
    Ok(codes)
}

/// Checks a code that must be a second factor of `principal`: a code from the app (each step
/// once) or, once TOTP is on, an unused recovery code (used up now). `enable` turns TOTP on
/// with an app code (a set-up's first). `None` when `principal` has no TOTP record.
async fn judge_factor(
    setting: &Arc<AppState>,
    principal: &str,
    code: &str,
    enable: bool,
) -> Result<Option<Judged>, ApiError> {
    let Some(recovery) = normalise_recovery(code) else {
        return judge(setting, principal, code, enable).await;
    };
    if totp_state(setting, principal).await? != Some(true) {
        return Ok(Some(Judged::Wrong));
    }
    let hash = recovery_hash(principal, &recovery);
    let p = principal.to_owned();
    let used = run(setting, move |s| s.use_recovery_code(&p, &hash, now_ms()))
        .await?
        .map_err(|e| store_err(&e))?;
    Ok(Some(if used {
        Judged::Recovery
    } else {
        Judged::Wrong
    }))
}

// ---- the code step of a sign-in ----

/// Completes a sign-in that answered `mfa_required: true` with a code from the authenticator
/// app (a manager may give one of their recovery codes instead, each once). Wrong codes count
/// toward the lockout; a code is accepted once. A manager's first code turns their second
/// factor on and the answer carries their recovery codes.
#[utoipa::path(post, path = "/api/v1/session/mfa", tag = "session", request_body = CodeBody,
    responses(
        (status = 200, body = SignedInBody, description = "Signed in; the session cookie is renewed; `recovery_codes` when a manager's second factor was just turned on"),
        (status = 401, body = ErrorBody, description = "No sign-in waiting for a code, a wrong or used code (`wrong_code`, `code_used`), or locked (`locked`)"),
    ))]
pub(crate) async fn mfa(
    State(st): State<Arc<PortalState>>,
    Extension(peer): Extension<Peer>,
    half: HalfSignedIn,
    JsonBody(req): JsonBody<CodeBody>,
) -> Result<Json<SignedInBody>, ApiError> {
    let now = now_ms();
    let setting = st.setting.clone();
    if locked_for(&setting, half.key.clone(), now).await?.is_some() {
        half.session.flush().await.map_err(|e| session_error(&e))?;
        return Err(locked_now());
    }
    let principal = half.who.principal();
    let manager = matches!(half.who, Login::Staff(_));
    let was_on = totp_state(&setting, &principal).await? == Some(true);
    let judged = if manager {
        judge_factor(&setting, &principal, &req.code, true).await?
    } else {
        judge(&setting, &principal, &req.code, false).await?
    };
    let refusal = match judged {
        // A parent's second factor turned off since the password was checked (by the parent,
        // with a code): nothing to check. A manager is never let in without one.
        None if manager => Some((wrong_code(), "portal_mfa_refused")),
        None | Some(Judged::Accepted | Judged::Recovery) => None,
        Some(Judged::Wrong) => Some((wrong_code(), "portal_mfa_refused")),
        Some(Judged::Replayed) => Some((code_used(), "portal_mfa_replayed")),
    };
    if let Some((e, what)) = refusal {
        let locked = count_failure(
            &setting,
            half.key.clone(),
            peer.addr.ip().to_string(),
            now,
            what,
        )
        .await?;
        if locked {
            half.session.flush().await.map_err(|e| session_error(&e))?;
            return Err(locked_now());
        }
        return Err(e);
    }
    let mut body = SignedInBody::mfa(false);
    if manager && !was_on {
        body.recovery_codes = Some(new_recovery_codes(&setting, &principal).await?);
        let p = principal.clone();
        run(&setting, move |s| {
            crate::http::audit(s, &p, None, "console_totp_on", String::new());
        })
        .await?;
    }
    if matches!(judged, Some(Judged::Recovery)) {
        let p = principal.clone();
        run(&setting, move |s| {
            crate::http::audit(s, &p, None, "recovery_code_used", String::new());
        })
        .await?;
    }
    signed_in(&st, &half.session, &half.who, now).await?;
    Ok(Json(body))
}

// ---- a manager's fresh second factor ----

/// `{totp}`: a fresh code from the app, or a recovery code, confirming a step that cannot be
/// undone (revoke, wipe, retire).
#[derive(Deserialize, ToSchema)]
pub(crate) struct FreshCode {
    totp: Option<String>,
}

impl std::fmt::Debug for FreshCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreshCode").finish_non_exhaustive()
    }
}

fn fresh_code_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "fresh_code_required",
        "Confirm this with a new code from your authenticator app (not one used before), or \
         with one of your recovery codes.",
    )
}

/// Checks a manager's fresh second factor afresh: a code of a step not used before, or an
/// unused recovery code. A wrong one counts toward the lockout like a wrong password; a lock
/// ends the session.
///
/// # Errors
/// 403 `fresh_code_required` without one or with a wrong or used one; 401 `locked`.
pub(crate) async fn require_fresh_code(m: &Manager, body: &FreshCode) -> Result<(), ApiError> {
    let principal = format!("staff:{}", m.staff);
    let judged = match body.totp.as_deref() {
        Some(code) => judge_factor(&m.setting, &principal, code, false).await?,
        None => return Err(fresh_code_required()),
    };
    match judged {
        Some(Judged::Accepted) => return Ok(()),
        Some(Judged::Recovery) => {
            run(&m.setting, move |s| {
                crate::http::audit(s, &principal, None, "recovery_code_used", String::new());
            })
            .await?;
            return Ok(());
        }
        _ => {}
    }
    let id = m.staff.to_string();
    let key = run(&m.setting, move |s| s.staff_email(&id))
        .await?
        .map_err(|e| store_err(&e))?
        .unwrap_or_else(|| format!("staff:{}", m.staff));
    let source =
        m.by.client
            .as_deref()
            .and_then(|c| c.split(' ').next())
            .unwrap_or_default()
            .to_owned();
    let locked = count_failure(&m.setting, key, source, now_ms(), "console_code_refused").await?;
    if locked {
        m.session.flush().await.map_err(|e| session_error(&e))?;
        return Err(locked_now());
    }
    Err(fresh_code_required())
}

// ---- set-up and turning off ----

/// A new second factor to add to an authenticator app: scan the QR code or type the secret.
#[derive(Serialize, ToSchema)]
pub(crate) struct TotpSetup {
    /// The secret, base32, for typing into the app.
    pub(super) secret: String,
    /// `otpauth://totp/…`, what the QR code holds.
    pub(super) otpauth_uri: String,
    /// The QR code of `otpauth_uri`, an SVG document.
    pub(super) qr_svg: String,
}

/// Starts turning on two-step sign-in: a new secret, not yet on until a code from it is
/// confirmed. Starting again replaces an unconfirmed one.
#[utoipa::path(post, path = "/api/v1/account/totp", tag = "account",
    responses(
        (status = 200, body = TotpSetup),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Already on: turn it off first"),
    ))]
pub(crate) async fn totp_start(who: SignedIn) -> Result<Json<TotpSetup>, ApiError> {
    let principal = format!("parent:{}", who.parent);
    if totp_state(&who.setting, &principal).await? == Some(true) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "totp_on",
            "Two-step sign-in is already on. Turn it off first to move it to another app.",
        ));
    }
    let account = lockout_key(&who.setting, &who.parent).await?;
    let setup = new_totp(&who.setting, &principal, &account).await?;
    run(&who.setting, move |s| {
        crate::http::audit(s, &principal, None, "portal_totp_start", String::new());
    })
    .await?;
    Ok(Json(setup))
}

/// Makes `principal` a new TOTP secret, stored but not on until a code from it is confirmed
/// (replacing an unconfirmed one), and returns its set-up for `account` (the address the app
/// shows).
pub(super) async fn new_totp(
    setting: &Arc<AppState>,
    principal: &str,
    account: &str,
) -> Result<TotpSetup, ApiError> {
    let secret: [u8; SECRET_BYTES] = rand::random();
    let totp = totp_of(&secret, account)?;
    let otpauth_uri = totp.to_url().map_err(|e| ApiError::internal(&e))?;
    let qr_svg = qr_svg(otpauth_uri.clone()).await?;
    let rec = TotpRecord {
        principal: principal.to_owned(),
        secret: secret.to_vec(),
        enabled: false,
        last_step: None,
        updated_at: now_ms(),
    };
    run(setting, move |s| s.put_totp(&rec))
        .await?
        .map_err(|e| store_err(&e))?;
    Ok(TotpSetup {
        secret: totp.secret().to_base32(),
        otpauth_uri,
        qr_svg,
    })
}

/// The QR code of `text`, an SVG document (made on the blocking pool).
pub(super) async fn qr_svg(text: String) -> Result<String, ApiError> {
    blocking(move || -> Result<String, ApiError> {
        let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| ApiError::internal(&e))?;
        Ok(code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .build())
    })
    .await?
}

/// Turns two-step sign-in on with the first code from the app just set up.
#[utoipa::path(post, path = "/api/v1/account/totp/confirm", tag = "account", request_body = CodeBody,
    responses(
        (status = 204, description = "On: sign-in asks for a code from now on"),
        (status = 400, body = ErrorBody, description = "A wrong or used code (it counts toward the lockout)"),
        (status = 401, body = ErrorBody, description = "Signed out, or locked (`locked`)"),
        (status = 409, body = ErrorBody, description = "No set-up waiting for a code"),
    ))]
pub(crate) async fn totp_confirm(
    who: SignedIn,
    Extension(peer): Extension<Peer>,
    JsonBody(req): JsonBody<CodeBody>,
) -> Result<StatusCode, ApiError> {
    let principal = format!("parent:{}", who.parent);
    if totp_state(&who.setting, &principal).await? != Some(false) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_totp_setup",
            "There is no set-up waiting for a code. Start turning on two-step sign-in again.",
        ));
    }
    require_code(&who, &peer, &principal, &req.code, true).await?;
    run(&who.setting, move |s| {
        crate::http::audit(s, &principal, None, "portal_totp_on", String::new());
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns two-step sign-in off; it takes a current code, so a session left open cannot.
#[utoipa::path(delete, path = "/api/v1/account/totp", tag = "account", request_body = CodeBody,
    responses(
        (status = 204, description = "Off (also when it was not on)"),
        (status = 400, body = ErrorBody, description = "A wrong or used code (it counts toward the lockout)"),
        (status = 401, body = ErrorBody, description = "Signed out, or locked (`locked`)"),
    ))]
pub(crate) async fn totp_off(
    who: SignedIn,
    Extension(peer): Extension<Peer>,
    JsonBody(req): JsonBody<CodeBody>,
) -> Result<StatusCode, ApiError> {
    let principal = format!("parent:{}", who.parent);
    if totp_state(&who.setting, &principal).await? == Some(true) {
        require_code(&who, &peer, &principal, &req.code, false).await?;
    }
    run(&who.setting, move |s| -> Result<(), StoreError> {
        s.delete_totp(&principal)?;
        crate::http::audit(s, &principal, None, "portal_totp_off", String::new());
        Ok(())
    })
    .await?
    .map_err(|e| store_err(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- invitations ----

/// Whom an invitation is for.
#[derive(Serialize, ToSchema)]
pub(crate) struct InvitationInfo {
    name: String,
    email: String,
}

/// `POST /api/v1/invitations/{token}`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct SetPassword {
    /// At least 12 characters, not a common password.
    password: String,
}

impl std::fmt::Debug for SetPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetPassword").finish_non_exhaustive()
    }
}

/// The invited parent, if `token` is an unused, unexpired invitation whose parent is still in
/// the roster.
async fn invited(
    setting: &Arc<AppState>,
    token: &str,
) -> Result<Option<(ParentId, InvitationInfo)>, ApiError> {
    if !is_invitation_token(token) {
        return Ok(None);
    }
    let hash = invitation_hash(token);
    run(
        setting,
        move |s| -> Result<Option<(ParentId, InvitationInfo)>, ApiError> {
            let Some(inv) = s.invitation(&hash, now_ms()).map_err(|e| store_err(&e))? else {
                return Ok(None);
            };
            let Ok(parent) = ParentId::parse(&inv.parent) else {
                return Ok(None);
            };
            let AnyDoc::Roster(roster) =
                load_doc(s, &DocId::Roster).map_err(|e| ApiError::internal(&e))?
            else {
                return Err(ApiError::internal(&"the roster is not a roster"));
            };
            let Some(p) = roster.parent(&parent) else {
                return Ok(None);
            };
            let email = s
                .parent_email(parent.as_str())
                .map_err(|e| store_err(&e))?
                .unwrap_or_default();
            Ok(Some((
                parent,
                InvitationInfo {
                    name: p.name,
                    email,
                },
            )))
        },
    )
    .await?
}

/// Whom an invitation link is for, so the page can greet them.
#[utoipa::path(get, path = "/api/v1/invitations/{token}", tag = "invitations",
    params(("token" = String, Path, description = "The token of the invitation link")),
    responses(
        (status = 200, body = InvitationInfo),
        (status = 404, body = ErrorBody, description = "Unknown, used or expired"),
    ))]
pub(crate) async fn get_invitation(
    State(st): State<Arc<PortalState>>,
    Path(token): Path<String>,
) -> Result<Json<InvitationInfo>, ApiError> {
    let (_, info) = invited(&st.setting, &token)
        .await?
        .ok_or_else(invitation_gone)?;
    Ok(Json(info))
}

fn invitation_gone() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "This invitation link has been used or has expired. Ask the setting for a new one.",
    )
}

/// Sets the invited parent's password; the link is used up. They then sign in with it.
#[utoipa::path(post, path = "/api/v1/invitations/{token}", tag = "invitations",
    params(("token" = String, Path, description = "The token of the invitation link")),
    request_body = SetPassword,
    responses(
        (status = 204, description = "The password is set; the link no longer works"),
        (status = 400, body = ErrorBody, description = "`password_too_short`, `password_too_long` or `password_too_common`"),
        (status = 404, body = ErrorBody, description = "Unknown, used or expired"),
    ))]
pub(crate) async fn accept_invitation(
    State(st): State<Arc<PortalState>>,
    Path(token): Path<String>,
    JsonBody(req): JsonBody<SetPassword>,
) -> Result<StatusCode, ApiError> {
    let setting = st.setting.clone();
    let (parent, _) = invited(&setting, &token)
        .await?
        .ok_or_else(invitation_gone)?;
    if let Err(refused) = passwords::check(&req.password) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            refused.code(),
            refused.to_string(),
        ));
    }
    let password = req.password;
    let phc = blocking(move || crate::admin::hash_password(&password))
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    let hash = invitation_hash(&token);
    let used = run(&setting, move |s| -> Result<bool, StoreError> {
        let now = now_ms();
        // Used up first, atomically: of two requests with one link, one sets the password.
        if s.use_invitation(&hash, now)?.is_none() {
            return Ok(false);
        }
        let principal = format!("parent:{parent}");
        s.set_password(&principal, &phc, now)?;
        crate::http::audit(s, &principal, None, "portal_invitation_used", String::new());
        Ok(true)
    })
    .await?
    .map_err(|e| store_err(&e))?;
    if !used {
        return Err(invitation_gone());
    }
    Ok(StatusCode::NO_CONTENT)
}
