//! The handlers of `/api/v1/` and their JSON types (the DTOs of the portal's edge). Every rule
//! is decided here, per request, from the roster as it stands: an id that is not the signed-in
//! parent's own answers 404 (never 403, so ids cannot be probed); then the agreement; then,
//! for a journal, the child's photo-consent answer.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sprig_core::{
    Actor, ChildId, Consent, Entry, EntryId, EntryStatus, GroupMembers, ParentId, ParentView,
    Roster, ShownAuthor, StaffId, Timestamp, parent_view_of,
};
use sprig_proto::DocId;
use tower_sessions::Session;
use utoipa::ToSchema;

use super::PortalState;
use super::extract::{JsonBody, Params};
use super::session::{
    Login, SignedIn, Someone, half_sign_in, id_hash, is_manager, session_error, sign_in,
};
use crate::admin::now_ms;
use crate::docs::{AnyDoc, DocStoreError, ReadCache, edit_journal, edit_roster, load_doc};
use crate::http::{ApiError, AppState, Peer, blocking};
use crate::media_store::MediaStoreError;
use crate::store::{AgreementRecord, ServerStore, StoreError};

/// Wrong passwords counted per e-mail address in [`WINDOW_MS`] before it is locked.
pub(crate) const MAX_FAILURES: u64 = 5;
/// The window failures are counted in, and how long a lock lasts: 15 minutes.
pub(crate) const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Entries per journal page.
pub(crate) const PAGE: usize = 20;
/// The longest reply, in characters (replies are comments, not letters).
pub(crate) const MAX_REPLY_CHARS: usize = 2_000;

const FAILURE: &str = "login_failure";
const LOCK: &str = "login_lock";
/// Wrong passwords counted per source address (any e-mail address) in [`WINDOW_MS`] before
/// that address may not try again until the window has moved on: one client cannot lock (or
/// guess at) many accounts.
pub(crate) const MAX_FAILURES_PER_SOURCE: u64 = 30;
const SOURCE_FAILURE: &str = "login_failure_source";

/// A JSON error: `{code, message}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// Stable, snake_case: `signed_out`, `not_found`, `agreement_required`, …
    code: String,
    /// What to do, for people.
    message: String,
}

pub(super) fn store_err(e: &StoreError) -> ApiError {
    ApiError::internal(e)
}

fn doc_err(e: &DocStoreError) -> ApiError {
    ApiError::internal(e)
}

pub(super) fn agreement_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "agreement_required",
        "Read and accept the setting's agreement first.",
    )
}

pub(super) fn consent_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "consent_required",
        "Answer the photo-consent question for this child first.",
    )
}

pub(super) async fn run<T: Send + 'static>(
    st: &Arc<AppState>,
    f: impl FnOnce(&dyn ServerStore) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let store = st.store.clone();
    blocking(move || f(store.as_ref())).await
}

// ---- session ----

/// `POST /api/v1/session`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct SignIn {
    email: String,
    password: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn").finish_non_exhaustive()
    }
}

/// Signed in; whether a second factor is still needed. A manager is never signed in by
/// password alone: their sign-in always answers `mfa_required: true`, and the first one also
/// carries the TOTP set-up (`totp_setup`, `totp_qr_svg`, `totp_secret`) to add to an
/// authenticator app; the code that completes it turns TOTP on and gets `recovery_codes`.
#[derive(Default, Serialize, ToSchema)]
pub(crate) struct SignedInBody {
    pub(super) mfa_required: bool,
    /// `otpauth://totp/…`: the new second factor, what the QR code holds (a manager's first
    /// sign-in only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) totp_setup: Option<String>,
    /// The QR code of `totp_setup`, an SVG document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) totp_qr_svg: Option<String>,
    /// The secret of `totp_setup`, base32, for typing into the app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) totp_secret: Option<String>,
    /// One-time recovery codes, each accepted once in place of a code from the app: shown
    /// once, when a manager's second factor is turned on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) recovery_codes: Option<Vec<String>>,
}

impl SignedInBody {
    pub(super) fn mfa(mfa_required: bool) -> SignedInBody {
        SignedInBody {
            mfa_required,
            ..SignedInBody::default()
        }
    }
}

fn wrong_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "wrong_credentials",
        "That e-mail address and password do not match. Check them and try again.",
    )
}

/// Counts a wrong password or code for the address `key` and the client `source`, and locks
/// the address after [`MAX_FAILURES`] in [`WINDOW_MS`]; returns whether it is now locked.
pub(super) async fn count_failure(
    setting: &Arc<AppState>,
    key: String,
    source: String,
    now: i64,
    what: &'static str,
) -> Result<bool, ApiError> {
    let locked = run(setting, move |s| -> Result<bool, StoreError> {
        s.record_attempt(SOURCE_FAILURE, &source, now)?;
        s.record_attempt(FAILURE, &key, now)?;
        let n = s.attempts_since(FAILURE, &key, now - WINDOW_MS)?;
        if n.count >= MAX_FAILURES {
            s.record_attempt(LOCK, &key, now)?;
            return Ok(true);
        }
        Ok(false)
    })
    .await?
    .map_err(|e| store_err(&e))?;
    run(setting, move |s| {
        crate::http::audit(s, "anonymous", None, what, format!("locked={locked}"));
    })
    .await?;
    Ok(locked)
}

/// Whether the address `key` is locked now: `Some(seconds left)`.
pub(super) async fn locked_for(
    setting: &Arc<AppState>,
    key: String,
    now: i64,
) -> Result<Option<u64>, ApiError> {
    let lock = run(setting, move |s| {
        s.attempts_since(LOCK, &key, now - WINDOW_MS)
    })
    .await?
    .map_err(|e| store_err(&e))?;
    Ok(lock.oldest.map(|oldest| {
        let left_ms = (oldest + WINDOW_MS - now).max(1000);
        u64::try_from((left_ms + 999) / 1000).unwrap_or(900)
    }))
}

/// The Argon2id hash a sign-in for an unknown address is checked against, so that it takes as
/// long as one for a known address.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| crate::admin::hash_password("not a password anyone has").unwrap_or_default())
}

/// Signs a parent or a manager in with e-mail and password. A member of staff who is not an
/// active manager has no console: refused as a wrong password would be.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = SignIn,
    responses(
        (status = 200, body = SignedInBody, description = "Signed in, or (`mfa_required`) half signed in until POST /api/v1/session/mfa"),
        (status = 401, body = ErrorBody, description = "Wrong e-mail address or password"),
        (status = 429, body = ErrorBody, description = "Locked after too many wrong passwords (`locked`: this address; `too_many_attempts`: from this network)"),
    ))]
pub(crate) async fn create_session(
    State(st): State<Arc<PortalState>>,
    Extension(peer): Extension<Peer>,
    session: Session,
    JsonBody(req): JsonBody<SignIn>,
) -> Result<Json<SignedInBody>, ApiError> {
    let key = req.email.trim().to_lowercase();
    let source = peer.addr.ip().to_string();
    let now = now_ms();
    let setting = st.setting.clone();
    let from_source = {
        let source = source.clone();
        run(&setting, move |s| {
            s.attempts_since(SOURCE_FAILURE, &source, now - WINDOW_MS)
        })
        .await?
        .map_err(|e| store_err(&e))?
    };
    if from_source.count >= MAX_FAILURES_PER_SOURCE {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "Too many wrong passwords from this network. Try again in 15 minutes.",
        );
        let left_ms = (from_source.oldest.unwrap_or(now) + WINDOW_MS - now).max(1000);
        e.retry_after = Some(u64::try_from((left_ms + 999) / 1000).unwrap_or(900));
        return Err(e);
    }
    if let Some(left) = locked_for(&setting, key.clone(), now).await? {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "locked",
            "Too many wrong passwords or codes: this account is locked for 15 minutes. Try again later.",
        );
        e.retry_after = Some(left);
        return Err(e);
    }
    let found = {
        let key = key.clone();
        run(&setting, move |s| -> Result<_, StoreError> {
            let principal = match s.parent_by_email(&key)? {
                Some(parent) => format!("parent:{parent}"),
                None => match s.staff_by_email(&key)? {
                    Some(staff) => format!("staff:{staff}"),
                    None => return Ok(None),
                },
            };
            Ok(s.password(&principal)?.map(|phc| (principal, phc)))
        })
        .await?
        .map_err(|e| store_err(&e))?
    };
    let password = req.password;
    let permit = st
        .password_checks
        .acquire()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let (principal, ok) = blocking(move || {
        let (principal, phc) = match found {
            Some((p, phc)) => (Some(p), phc),
            None => (None, dummy_hash().to_owned()),
        };
        let ok = PasswordHash::new(&phc).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        (principal, ok)
    })
    .await?;
    drop(permit);
    let who = match principal.as_deref().filter(|_| ok) {
        Some(p) => login_of(p, &setting).await?,
        None => None,
    };
    let Some(who) = who else {
        count_failure(&setting, key, source, now, "portal_sign_in_refused").await?;
        return Err(wrong_credentials());
    };
    let principal = who.principal();
    let totp = run(&setting, move |s| s.totp(&principal))
        .await?
        .map_err(|e| store_err(&e))?;
    let mfa = totp.as_ref().is_some_and(|t| t.enabled);
    match &who {
        Login::Staff(_) if !mfa => {
            // The first sign-in of a manager: a new second factor to set up, on only once a
            // code from it completes the sign-in.
            let setup = super::account::new_totp(&setting, &who.principal(), &key).await?;
            half_sign_in(&session, &who, &key).await?;
            Ok(Json(SignedInBody {
                mfa_required: true,
                totp_setup: Some(setup.otpauth_uri),
                totp_qr_svg: Some(setup.qr_svg),
                totp_secret: Some(setup.secret),
                recovery_codes: None,
            }))
        }
        _ if mfa => {
            half_sign_in(&session, &who, &key).await?;
            Ok(Json(SignedInBody::mfa(true)))
        }
        _ => {
            signed_in(&st, &session, &who, now).await?;
            Ok(Json(SignedInBody::mfa(false)))
        }
    }
}

/// Who a principal whose password was right signs in as: a parent, or an active manager;
/// `None` for other staff (practitioners, the deactivated), who have no console.
async fn login_of(principal: &str, setting: &Arc<AppState>) -> Result<Option<Login>, ApiError> {
    if let Some(p) = principal.strip_prefix("parent:") {
        return Ok(Some(Login::Parent(
            ParentId::parse(p).map_err(|e| ApiError::internal(&e))?,
        )));
    }
    let Some(id) = principal
        .strip_prefix("staff:")
        .and_then(|s| StaffId::parse(s).ok())
    else {
        return Ok(None);
    };
    let AnyDoc::Roster(roster) = run(setting, |s| load_doc(s, &DocId::Roster))
        .await?
        .map_err(|e| doc_err(&e))?
    else {
        return Err(ApiError::internal(&"the roster is not a roster"));
    };
    Ok(is_manager(&roster, &id).then_some(Login::Staff(id)))
}

/// Completes a sign-in: the session is signed in as `who`, and it is audited.
pub(super) async fn signed_in(
    st: &Arc<PortalState>,
    session: &Session,
    who: &Login,
    now: i64,
) -> Result<(), ApiError> {
    sign_in(session, who, st).await?;
    let (principal, action) = match who {
        Login::Parent(_) => (who.principal(), "portal_sign_in"),
        Login::Staff(_) => (who.principal(), "console_sign_in"),
    };
    run(&st.setting, move |s| {
        let _ = s.delete_expired_sessions(now);
        crate::http::audit(s, &principal, None, action, String::new());
    })
    .await?;
    Ok(())
}

/// Signs out: the session ends on the server.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204, description = "Signed out (also when not signed in)")))]
pub(crate) async fn delete_session(session: Session) -> Result<StatusCode, ApiError> {
    session.flush().await.map_err(|e| session_error(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- me and the agreement ----

/// A linked child, as its parent's account lists it.
#[derive(Serialize, ToSchema)]
pub(crate) struct MeChild {
    id: String,
    name: String,
    consent_required: bool,
    /// The photo-consent answer in force, `null` while unanswered; the parent may change it.
    photo_consent: Option<bool>,
}

/// `GET /api/v1/me`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Me {
    id: String,
    name: String,
    /// `parent` or `manager` (the console is a manager's).
    role: String,
    agreement_required: bool,
    /// Whether sign-in asks for a code from an authenticator app.
    totp_enabled: bool,
    children: Vec<MeChild>,
}

/// The agreement in force.
#[derive(Serialize, ToSchema)]
pub(crate) struct Agreement {
    version: String,
    text: String,
}

/// `POST /api/v1/agreement`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct AcceptAgreement {
    version: String,
}

fn current_agreement(s: &dyn ServerStore) -> Result<Agreement, StoreError> {
    let (version, text) = crate::manage::agreement(s)?;
    Ok(Agreement { version, text })
}

/// Whether `parent` has accepted the agreement in force.
pub(super) async fn agreement_accepted(
    st: &Arc<AppState>,
    parent: &ParentId,
) -> Result<bool, ApiError> {
    let principal = format!("parent:{parent}");
    run(st, move |s| -> Result<bool, StoreError> {
        let current = current_agreement(s)?;
        Ok(s.latest_agreement(&principal)?
            .is_some_and(|a| a.version == current.version))
    })
    .await?
    .map_err(|e| store_err(&e))
}

/// Linked children in the roster.
fn children_of(roster: &Roster, parent: &ParentId) -> Vec<sprig_core::Child> {
    roster
        .parent(parent)
        .map(|p| p.children)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| roster.child(c))
        .collect()
}

/// Who is signed in: a parent, and what they must do before they can see a journal; or a
/// manager (no children, no agreement; the second factor is always on).
#[utoipa::path(get, path = "/api/v1/me", tag = "account",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub(crate) async fn me(someone: Someone) -> Result<Json<Me>, ApiError> {
    let who = match someone {
        Someone::Parent(who) => who,
        Someone::Manager(m) => {
            return Ok(Json(Me {
                id: m.staff.to_string(),
                name: m.roster.staff(&m.staff).map(|s| s.name).unwrap_or_default(),
                role: "manager".into(),
                agreement_required: false,
                totp_enabled: true,
                children: Vec::new(),
            }));
        }
    };
    let agreement_required = !agreement_accepted(&who.setting, &who.parent).await?;
    let principal = format!("parent:{}", who.parent);
    let totp_enabled = run(&who.setting, move |s| s.totp(&principal))
        .await?
        .map_err(|e| store_err(&e))?
        .is_some_and(|t| t.enabled);
    let name = who
        .roster
        .parent(&who.parent)
        .map(|p| p.name)
        .unwrap_or_default();
    Ok(Json(Me {
        id: who.parent.to_string(),
        name,
        role: "parent".into(),
        agreement_required,
        totp_enabled,
        children: children_of(&who.roster, &who.parent)
            .into_iter()
            .map(|c| MeChild {
                id: c.id.to_string(),
                name: c.name,
                consent_required: c.photo_consent == Consent::NotAsked,
                photo_consent: match c.photo_consent {
                    Consent::Yes => Some(true),
                    Consent::No => Some(false),
                    _ => None,
                },
            })
            .collect(),
    }))
}

/// The setting's agreement, shown before anything else.
#[utoipa::path(get, path = "/api/v1/agreement", tag = "account",
    responses((status = 200, body = Agreement), (status = 401, body = ErrorBody)))]
pub(crate) async fn get_agreement(who: SignedIn) -> Result<Json<Agreement>, ApiError> {
    let a = run(&who.setting, current_agreement)
        .await?
        .map_err(|e| store_err(&e))?;
    Ok(Json(a))
}

/// Accepts the agreement in force; records the version, the time and the session.
#[utoipa::path(post, path = "/api/v1/agreement", tag = "account", request_body = AcceptAgreement,
    responses(
        (status = 204, description = "Accepted"),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The agreement changed: read it again"),
    ))]
pub(crate) async fn accept_agreement(
    who: SignedIn,
    JsonBody(req): JsonBody<AcceptAgreement>,
) -> Result<StatusCode, ApiError> {
    let session_hash = who
        .session
        .id()
        .map(|id| id_hash(&id))
        .ok_or_else(super::session::signed_out)?;
    let principal = format!("parent:{}", who.parent);
    let accepted = run(&who.setting, move |s| -> Result<bool, StoreError> {
        let current = current_agreement(s)?;
        if current.version != req.version {
            return Ok(false);
        }
        s.record_agreement(&AgreementRecord {
            principal: principal.clone(),
            version: current.version.clone(),
            at: now_ms(),
            session_hash,
        })?;
        crate::http::audit(
            s,
            &principal,
            None,
            "portal_agreement",
            format!("version={}", current.version),
        );
        Ok(true)
    })
    .await?
    .map_err(|e| store_err(&e))?;
    if !accepted {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "agreement_changed",
            "The agreement has changed: read it again, then accept it.",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---- consent ----

/// `POST /api/v1/children/{id}/consent`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct ConsentAnswer {
    /// May this child's photo appear in other children's journals?
    photo_consent: bool,
}

/// The signed-in parent's own linked child with this id, or 404.
pub(super) fn own_child(who: &SignedIn, id: &str) -> Result<ChildId, ApiError> {
    let child = ChildId::parse(id).map_err(|_| ApiError::not_found())?;
    let linked = who
        .roster
        .parent(&who.parent)
        .is_some_and(|p| p.children.contains(&child));
    if !linked || who.roster.child(&child).is_none() {
        return Err(ApiError::not_found());
    }
    Ok(child)
}

/// Answers (or changes) the photo-consent question for one's own child; the server writes
/// the roster.
#[utoipa::path(post, path = "/api/v1/children/{id}/consent", tag = "children",
    params(("id" = String, Path, description = "The child's id")),
    request_body = ConsentAnswer,
    responses(
        (status = 204, description = "Recorded in the roster"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "agreement_required"),
        (status = 404, body = ErrorBody, description = "Not this parent's child"),
    ))]
pub(crate) async fn set_consent(
    who: SignedIn,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ConsentAnswer>,
) -> Result<StatusCode, ApiError> {
    let child = own_child(&who, &id)?;
    if !agreement_accepted(&who.setting, &who.parent).await? {
        return Err(agreement_required());
    }
    let consent = if req.photo_consent {
        Consent::Yes
    } else {
        Consent::No
    };
    let parent = who.parent.clone();
    run(&who.setting, move |s| -> Result<(), ApiError> {
        edit_roster(s, |r| -> Result<(), ApiError> {
            r.set_consent(&child, consent, Timestamp(now_ms()))
                .map_err(|e| ApiError::internal(&e))
        })
        .map_err(|e: ApiError| e)?;
        crate::http::audit(
            s,
            &format!("parent:{parent}"),
            None,
            "portal_consent",
            format!("child={child} consent={}", consent.as_str()),
        );
        Ok(())
    })
    .await??;
    Ok(StatusCode::NO_CONTENT)
}

impl From<DocStoreError> for ApiError {
    fn from(e: DocStoreError) -> ApiError {
        doc_err(&e)
    }
}

// ---- the journal ----

/// A photo or video of an entry, served by `GET /api/v1/media/{id}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct JournalMedia {
    id: String,
    /// `photo` or `video`.
    kind: String,
    url: String,
}

impl JournalMedia {
    /// How a parent reaches one media file: through `GET /api/v1/media/{id}`.
    pub(super) fn of(m: &sprig_core::MediaRef) -> JournalMedia {
        let sha = m.sha256.to_hex();
        JournalMedia {
            url: format!("/api/v1/media/{sha}"),
            id: sha,
            kind: m.kind.as_str().to_owned(),
        }
    }
}

/// A reply under an entry.
#[derive(Serialize, ToSchema)]
pub(crate) struct JournalReply {
    author: String,
    created_at: i64,
    text: String,
}

/// A published entry as a parent sees it. A group entry never names another child.
#[derive(Serialize, ToSchema)]
pub(crate) struct JournalEntry {
    id: String,
    /// ms since the Unix epoch.
    created_at: i64,
    text: String,
    areas: Vec<String>,
    next_step: String,
    media: Vec<JournalMedia>,
    /// Media exist but are not shown (a child in the group has no photo consent).
    media_hidden: bool,
    is_group: bool,
    replies: Vec<JournalReply>,
    author: String,
}

/// A page of a child's journal, newest first; `next` is the cursor of the following page.
#[derive(Serialize, ToSchema)]
pub(crate) struct JournalPage {
    child_name: String,
    entries: Vec<JournalEntry>,
    next: Option<String>,
}

/// `?before=CURSOR`.
#[derive(Deserialize, utoipa::IntoParams)]
pub(crate) struct PageQuery {
    /// The `next` of the previous page.
    before: Option<String>,
}

fn shown(a: &ShownAuthor) -> String {
    match a {
        ShownAuthor::Staff(n) | ShownAuthor::Parent(n) => n.clone(),
        ShownAuthor::You => "You".into(),
    }
}

/// A child's journal as `parent` sees it, or `None` when the link does not take effect
/// (not linked, or consent unanswered). Group membership comes from the other journals, read
/// only when this one holds a group entry. Entries come through `reads`, which keeps them while
/// the stored journal is unchanged.
pub(super) fn view_of(
    s: &dyn ServerStore,
    reads: &ReadCache,
    roster: &Roster,
    parent: &ParentId,
    child: &ChildId,
) -> Result<Option<ParentView>, DocStoreError> {
    let entries = reads.entries(s, child)?;
    let mut groups = GroupMembers::default();
    if entries.iter().any(|e| e.group.is_some()) {
        for c in roster.children() {
            if &c.id == child {
                groups = merge_groups(groups, child, &entries);
            } else if let Ok(other) = reads.entries(s, &c.id) {
                groups = merge_groups(groups, &c.id, &other);
            }
        }
    }
    Ok(parent_view_of(child, &entries, roster, parent, &groups).ok())
}

fn merge_groups(mut g: GroupMembers, child: &ChildId, entries: &[Entry]) -> GroupMembers {
    for e in entries {
        if let Some(group) = &e.group {
            g.insert(group.clone(), child.clone());
        }
    }
    g
}

fn cursor_of(e: &sprig_core::ParentEntry) -> String {
    format!("{}_{}", e.created_at.0, e.id)
}

/// One page of a child's journal: published entries only, newest first.
#[utoipa::path(get, path = "/api/v1/children/{id}/journal", tag = "children",
    params(("id" = String, Path, description = "The child's id"), PageQuery),
    responses(
        (status = 200, body = JournalPage),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "agreement_required or consent_required"),
        (status = 404, body = ErrorBody, description = "Not this parent's child"),
    ))]
pub(crate) async fn journal(
    State(st): State<Arc<PortalState>>,
    who: SignedIn,
    Path(id): Path<String>,
    Params(q): Params<PageQuery>,
) -> Result<Json<JournalPage>, ApiError> {
    let child = own_child(&who, &id)?;
    if !agreement_accepted(&who.setting, &who.parent).await? {
        return Err(agreement_required());
    }
    if who
        .roster
        .child(&child)
        .is_none_or(|c| c.photo_consent == Consent::NotAsked)
    {
        return Err(consent_required());
    }
    let (roster, parent) = (who.roster, who.parent);
    let permit = st
        .journal_views
        .acquire()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let reads = who.setting.reads.clone();
    let view = run(&who.setting, move |s| {
        view_of(s, &reads, &roster, &parent, &child)
    })
    .await??
    .ok_or_else(ApiError::not_found)?;
    drop(permit);
    let mut entries: Vec<_> = view
        .entries
        .into_iter()
        .filter(|e| e.status == EntryStatus::Published)
        .collect();
    entries.sort_by(|a, b| (b.created_at.0, b.id.as_str()).cmp(&(a.created_at.0, a.id.as_str())));
    if let Some(before) = q.before.as_deref() {
        let (at, eid) = before
            .split_once('_')
            .and_then(|(a, e)| Some((a.parse::<i64>().ok()?, e.to_owned())))
            .ok_or_else(|| ApiError::bad_request("`before` is not a cursor from `next`"))?;
        entries.retain(|e| (e.created_at.0, e.id.as_str()) < (at, eid.as_str()));
    }
    let next = (entries.len() > PAGE).then(|| cursor_of(&entries[PAGE - 1]));
    entries.truncate(PAGE);
    Ok(Json(JournalPage {
        child_name: view.child_name,
        next,
        entries: entries
            .into_iter()
            .map(|e| JournalEntry {
                id: e.id.to_string(),
                created_at: e.created_at.0,
                text: e.text,
                areas: e.areas.iter().map(|a| a.as_str().to_owned()).collect(),
                next_step: e.next_steps,
                media: e.media.iter().map(JournalMedia::of).collect(),
                media_hidden: e.media_hidden,
                is_group: e.is_group,
                replies: e
                    .replies
                    .iter()
                    .map(|r| JournalReply {
                        author: shown(&r.author),
                        created_at: r.created_at.0,
                        text: r.text.clone(),
                    })
                    .collect(),
                author: shown(&e.author),
            })
            .collect(),
    }))
}

// ---- media ----

/// The MIME type of a media file of an entry this parent may see, or `None`.
fn entitled_media(
    s: &dyn ServerStore,
    reads: &ReadCache,
    roster: &Roster,
    parent: &ParentId,
    sha: &str,
) -> Result<Option<String>, DocStoreError> {
    for c in children_of(roster, parent) {
        let Some(view) = view_of(s, reads, roster, parent, &c.id)? else {
            continue;
        };
        // Published entries, and the parent's own contributions in any state (they sent
        // those photos); another parent's contribution only once staff approved it.
        for e in view
            .entries
            .iter()
            .filter(|e| e.status == EntryStatus::Published || e.author == ShownAuthor::You)
        {
            if let Some(m) = e.media.iter().find(|m| m.sha256.to_hex() == sha) {
                return Ok(Some(m.mime.clone()));
            }
        }
    }
    Ok(None)
}

/// A photo or video of an entry the parent may see: inline, never cached.
#[utoipa::path(get, path = "/api/v1/media/{id}", tag = "media",
    params(("id" = String, Path, description = "The media's SHA-256, hex")),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "agreement_required"),
        (status = 404, body = ErrorBody, description = "Not an entry of this parent's child"),
    ))]
pub(crate) async fn media(who: SignedIn, Path(id): Path<String>) -> Result<Response, ApiError> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found());
    }
    let sha = id.to_ascii_lowercase();
    let (roster, parent) = (who.roster.clone(), who.parent.clone());
    let found = {
        let sha = sha.clone();
        let reads = who.setting.reads.clone();
        run(&who.setting, move |s| {
            entitled_media(s, &reads, &roster, &parent, &sha)
        })
        .await??
        .ok_or_else(ApiError::not_found)?
    };
    if !agreement_accepted(&who.setting, &who.parent).await? {
        return Err(agreement_required());
    }
    media_response(&who.setting, &sha, &found).await
}

/// Media `sha` streamed from the media store, inline, as `mime` when it is a type the portal
/// shows (else as bytes); the portal's layer adds `Cache-Control: no-store`.
pub(super) async fn media_response(
    setting: &Arc<AppState>,
    sha: &str,
    mime: &str,
) -> Result<Response, ApiError> {
    let stream = setting.media.get(sha).await.map_err(|e| match e {
        MediaStoreError::NotFound => ApiError::not_found(),
        other => ApiError::internal(&other),
    })?;
    let mut r = Response::new(Body::from_stream(stream));
    let h = r.headers_mut();
    let ct = match mime {
        "image/jpeg" | "image/png" | "image/webp" | "video/mp4" | "video/webm"
        | "video/quicktime" => mime,
        _ => "application/octet-stream",
    };
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(static_mime(ct)),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    Ok(r)
}

fn static_mime(ct: &str) -> &'static str {
    match ct {
        "image/jpeg" => "image/jpeg",
        "image/png" => "image/png",
        "image/webp" => "image/webp",
        "video/mp4" => "video/mp4",
        "video/webm" => "video/webm",
        "video/quicktime" => "video/quicktime",
        _ => "application/octet-stream",
    }
}

// ---- replies ----

/// `POST /api/v1/entries/{id}/replies`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct NewReply {
    /// Plain text, at most 2,000 characters.
    text: String,
}

/// The reply's id.
#[derive(Serialize, ToSchema)]
pub(crate) struct Created {
    id: String,
}

/// The child whose journal holds a published entry `entry` this parent may see.
fn entry_child(
    s: &dyn ServerStore,
    reads: &ReadCache,
    roster: &Roster,
    parent: &ParentId,
    entry: &EntryId,
) -> Result<Option<ChildId>, DocStoreError> {
    for c in children_of(roster, parent) {
        let Some(view) = view_of(s, reads, roster, parent, &c.id)? else {
            continue;
        };
        if view
            .entries
            .iter()
            .any(|e| &e.id == entry && e.status == EntryStatus::Published)
        {
            return Ok(Some(c.id));
        }
    }
    Ok(None)
}

/// Replies to an entry of one's own child's journal. Tablets receive it at their next sync.
#[utoipa::path(post, path = "/api/v1/entries/{id}/replies", tag = "entries",
    params(("id" = String, Path, description = "The entry's id")),
    request_body = NewReply,
    responses(
        (status = 201, body = Created),
        (status = 400, body = ErrorBody, description = "Empty or too long"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "agreement_required"),
        (status = 404, body = ErrorBody, description = "Not an entry of this parent's child"),
    ))]
pub(crate) async fn reply(
    who: SignedIn,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<NewReply>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let entry = EntryId::parse(&id).map_err(|_| ApiError::not_found())?;
    let (roster, parent) = (who.roster.clone(), who.parent.clone());
    let child = {
        let entry = entry.clone();
        let reads = who.setting.reads.clone();
        run(&who.setting, move |s| {
            entry_child(s, &reads, &roster, &parent, &entry)
        })
        .await??
        .ok_or_else(ApiError::not_found)?
    };
    if !agreement_accepted(&who.setting, &who.parent).await? {
        return Err(agreement_required());
    }
    let text = req.text.trim().to_owned();
    if text.is_empty() || text.chars().count() > MAX_REPLY_CHARS {
        return Err(ApiError::bad_request(format!(
            "A reply is between 1 and {MAX_REPLY_CHARS} characters."
        )));
    }
    let (roster, parent) = (who.roster, who.parent);
    let reply_id = run(&who.setting, move |s| -> Result<String, ApiError> {
        let actor = Actor::Parent(parent.clone());
        let id = edit_journal(s, &child, |j| -> Result<String, ApiError> {
            j.reply(&roster, &actor, &entry, &text, Timestamp(now_ms()))
                .map(|r| r.to_string())
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })?;
        crate::http::audit(
            s,
            &format!("parent:{parent}"),
            None,
            "portal_reply",
            format!("child={child} entry={entry}"),
        );
        Ok(id)
    })
    .await??;
    Ok((StatusCode::CREATED, Json(Created { id: reply_id })))
}

// ---- sessions ----

/// One of the parent's signed-in sessions.
#[derive(Serialize, ToSchema)]
pub(crate) struct SessionInfo {
    /// The session's reference (a hash of its id, never the cookie), for ending it.
    id: String,
    /// When it was signed in (ms).
    signed_in_at: Option<i64>,
    /// When it ends unless used again (ms).
    expires_at: i64,
    /// Whether it is the session of this request.
    current: bool,
}

/// The parent's signed-in sessions, so they can end one they do not recognise.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "session",
    responses((status = 200, body = [SessionInfo]), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_sessions(who: SignedIn) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    let current = who.session.id().map(|id| id_hash(&id));
    let principal = format!("parent:{}", who.parent);
    let now = now_ms();
    let rows = run(&who.setting, move |s| s.sessions_of(&principal, now))
        .await?
        .map_err(|e| store_err(&e))?;
    Ok(Json(
        rows.into_iter()
            .map(|r| SessionInfo {
                current: current.as_deref() == Some(r.id_hash.as_str()),
                signed_in_at: serde_json::from_slice::<serde_json::Value>(&r.data)
                    .ok()
                    .and_then(|d| d.get("signed_in_at").and_then(serde_json::Value::as_i64)),
                expires_at: r.expires_at,
                id: r.id_hash,
            })
            .collect(),
    ))
}

/// Ends one of the parent's sessions on the server (another device, or this one).
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "session",
    params(("id" = String, Path, description = "The session's reference from GET /api/v1/sessions")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Not one of this parent's sessions"),
    ))]
pub(crate) async fn end_session(
    who: SignedIn,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let principal = format!("parent:{}", who.parent);
    let now = now_ms();
    let ended = {
        let id = id.clone();
        run(&who.setting, move |s| -> Result<bool, StoreError> {
            if !s
                .sessions_of(&principal, now)?
                .iter()
                .any(|r| r.id_hash == id)
            {
                return Ok(false);
            }
            s.delete_session(&id)?;
            crate::http::audit(s, &principal, None, "portal_session_end", String::new());
            Ok(true)
        })
        .await?
        .map_err(|e| store_err(&e))?
    };
    if !ended {
        return Err(ApiError::not_found());
    }
    if who.session.id().map(|i| id_hash(&i)).as_deref() == Some(id.as_str()) {
        who.session.flush().await.map_err(|e| session_error(&e))?;
    }
    Ok(StatusCode::NO_CONTENT)
}
