//! Portal sessions: tower-sessions over [`ServerStore`] (every backend keeps them, so a hosted
//! deployment's replicas share them), and who is signed in as extractors: a parent
//! ([`SignedIn`]) or a manager of the setting ([`Manager`], which answers 404 to anyone else).
//!
//! The cookie carries the session id (128 random bits, tower-sessions' `Id`); the store keeps
//! only its SHA-256. A parent's session expires at the earlier of 30 minutes idle and 7 days
//! after sign-in, a manager's at the earlier of 15 minutes idle and 8 hours: each
//! authenticated request moves the idle deadline, never past the absolute one.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use sprig_core::{ParentId, Role, Roster, StaffId};
use sprig_proto::DocId;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, Session};

use super::PortalState;
use crate::admin::now_ms;
use crate::by::By;
use crate::docs::{AnyDoc, load_doc};
use crate::http::{ApiError, AppState, Peer, blocking};
use crate::store::{ServerStore, SessionRow, StoreError};

/// The session cookie's name: `__Host-` makes the browser insist on `Secure`, `Path=/` and no
/// `Domain`, so no other host can set or shadow it.
pub(crate) const COOKIE: &str = "__Host-sprig-session";

/// Session keys.
const PARENT: &str = "parent";
const STAFF: &str = "staff";
const SIGNED_IN_AT: &str = "signed_in_at";
/// Half signed in: the password was right, the second factor is still to come. Only
/// `POST /api/v1/session/mfa` reads these; [`SignedIn`] and [`Manager`] never do.
const MFA_PARENT: &str = "mfa_parent";
const MFA_STAFF: &str = "mfa_staff";
const MFA_KEY: &str = "mfa_key";
const MFA_AT: &str = "mfa_at";

/// How long a half-signed-in session waits for its code.
pub(crate) const MFA_WINDOW_MS: i64 = 5 * 60 * 1000;

/// The hex SHA-256 of a session id, as the store keys it.
pub(crate) fn id_hash(id: &Id) -> String {
    hex::encode(Sha256::digest(id.to_string().as_bytes()))
}

fn ms_of(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn time_of(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// tower-sessions' store over a [`ServerStore`].
#[derive(Clone, Debug)]
pub(crate) struct StoreSessions {
    store: Arc<dyn ServerStore>,
}

impl StoreSessions {
    pub(crate) fn new(store: Arc<dyn ServerStore>) -> StoreSessions {
        StoreSessions { store }
    }

    fn row(r: &Record) -> session_store::Result<SessionRow> {
        let data =
            serde_json::to_vec(&r.data).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        Ok(SessionRow {
            id_hash: id_hash(&r.id),
            principal: r
                .data
                .get(PARENT)
                .and_then(serde_json::Value::as_str)
                .map(|p| format!("parent:{p}"))
                .or_else(|| {
                    r.data
                        .get(STAFF)
                        .and_then(serde_json::Value::as_str)
                        .map(|p| format!("staff:{p}"))
                }),
            data,
            expires_at: ms_of(r.expiry_date),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn ServerStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<Result<T, StoreError>, session_store::Error> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| session_store::Error::Backend(e.to_string()))
    }
}

fn backend(e: &StoreError) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for StoreSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A collision of 128 random bits is not expected; draw again rather than overwrite.
        loop {
            let row = Self::row(record)?;
            match self.run(move |s| s.create_session(&row)).await? {
                Ok(()) => return Ok(()),
                Err(StoreError::AlreadyExists(_)) => record.id = Id::default(),
                Err(e) => return Err(backend(&e)),
            }
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        // An update only: a session ended (signed out elsewhere) while this request ran
        // stays ended. New sessions come through `create`.
        let row = Self::row(record)?;
        self.run(move |s| s.update_session(&row))
            .await?
            .map(|_| ())
            .map_err(|e| backend(&e))
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let hash = id_hash(id);
        let now = now_ms();
        let Some(row) = self
            .run(move |s| s.load_session(&hash, now))
            .await?
            .map_err(|e| backend(&e))?
        else {
            return Ok(None);
        };
        let data = serde_json::from_slice(&row.data)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date: time_of(row.expires_at),
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let hash = id_hash(id);
        self.run(move |s| s.delete_session(&hash))
            .await?
            .map_err(|e| backend(&e))
    }
}

pub(crate) fn session_error(e: &tower_sessions::session::Error) -> ApiError {
    ApiError::internal(e)
}

/// Who signs in on a portal session: a parent, or a member of staff (a manager, in the
/// console).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Login {
    Parent(ParentId),
    Staff(StaffId),
}

impl Login {
    /// The store's principal: `parent:<id>` or `staff:<id>`.
    pub(crate) fn principal(&self) -> String {
        match self {
            Login::Parent(p) => format!("parent:{p}"),
            Login::Staff(s) => format!("staff:{s}"),
        }
    }

    /// The session key that holds the id once signed in, and the one while half signed in.
    fn keys(&self) -> (&'static str, &'static str, &str) {
        match self {
            Login::Parent(p) => (PARENT, MFA_PARENT, p.as_str()),
            Login::Staff(s) => (STAFF, MFA_STAFF, s.as_str()),
        }
    }

    /// Idle and absolute expiry of its sessions, ms.
    fn lifetimes(&self, st: &PortalState) -> (i64, i64) {
        match self {
            Login::Parent(_) => (st.idle_ms, st.absolute_ms),
            Login::Staff(_) => (st.console_idle_ms, st.console_absolute_ms),
        }
    }
}

/// Marks `session` signed in as `who`: a new session id (so an id planted before sign-in is
/// worthless), the sign-in time, and the first expiry.
pub(crate) async fn sign_in(
    session: &Session,
    who: &Login,
    st: &PortalState,
) -> Result<(), ApiError> {
    session.cycle_id().await.map_err(|e| session_error(&e))?;
    // Nothing from before sign-in (a half sign-in, another login's) carries over.
    session.clear().await;
    let now = now_ms();
    let (key, _, id) = who.keys();
    session
        .insert(key, id)
        .await
        .map_err(|e| session_error(&e))?;
    session
        .insert(SIGNED_IN_AT, now)
        .await
        .map_err(|e| session_error(&e))?;
    extend(session, now, now, who.lifetimes(st));
    Ok(())
}

/// Marks `session` half signed in as `who` (whose password was right), waiting at most
/// [`MFA_WINDOW_MS`] for a second factor: a new id, nothing else in it. `key` is the
/// sign-in's lockout key (the address as typed, normalised), so wrong codes count with wrong
/// passwords.
pub(crate) async fn half_sign_in(
    session: &Session,
    who: &Login,
    key: &str,
) -> Result<(), ApiError> {
    session.cycle_id().await.map_err(|e| session_error(&e))?;
    session.clear().await;
    let now = now_ms();
    let (_, mfa_key, id) = who.keys();
    for (k, v) in [
        (mfa_key, serde_json::json!(id)),
        (MFA_KEY, serde_json::json!(key)),
        (MFA_AT, serde_json::json!(now)),
    ] {
        session.insert(k, v).await.map_err(|e| session_error(&e))?;
    }
    session.set_expiry(Some(Expiry::AtDateTime(time_of(
        now.saturating_add(MFA_WINDOW_MS),
    ))));
    Ok(())
}

/// A half-signed-in session (password right, code still to come), or 401 `signed_out`.
pub(crate) struct HalfSignedIn {
    pub(crate) who: Login,
    /// The lockout key of the sign-in.
    pub(crate) key: String,
    pub(crate) session: Session,
}

impl FromRequestParts<Arc<PortalState>> for HalfSignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &Arc<PortalState>,
    ) -> Result<Self, Self::Rejection> {
        let session = session_of(parts, st).await?;
        let parent: Option<String> = session
            .get(MFA_PARENT)
            .await
            .map_err(|e| session_error(&e))?;
        let staff: Option<String> = session
            .get(MFA_STAFF)
            .await
            .map_err(|e| session_error(&e))?;
        let key: Option<String> = session.get(MFA_KEY).await.map_err(|e| session_error(&e))?;
        let at: Option<i64> = session.get(MFA_AT).await.map_err(|e| session_error(&e))?;
        let (Some(key), Some(at)) = (key, at) else {
            return Err(signed_out());
        };
        if now_ms() >= at.saturating_add(MFA_WINDOW_MS) {
            session.flush().await.map_err(|e| session_error(&e))?;
            return Err(signed_out());
        }
        let who = match (parent, staff) {
            (Some(p), None) => Login::Parent(ParentId::parse(&p).map_err(|_| signed_out())?),
            (None, Some(s)) => Login::Staff(StaffId::parse(&s).map_err(|_| signed_out())?),
            _ => return Err(signed_out()),
        };
        Ok(HalfSignedIn { who, key, session })
    }
}

/// Moves the idle deadline, never past the absolute one (`lifetimes`: idle and absolute, ms).
fn extend(session: &Session, now: i64, signed_in_at: i64, (idle_ms, absolute_ms): (i64, i64)) {
    let idle = now.saturating_add(idle_ms);
    let absolute = signed_in_at.saturating_add(absolute_ms);
    session.set_expiry(Some(Expiry::AtDateTime(time_of(idle.min(absolute)))));
}

/// The roster as stored now. Read afresh for every request: a roster kept and shared between
/// requests grew the server's memory threefold in the portal benchmark (docs/BENCHMARKS.md).
async fn roster_now(setting: &Arc<AppState>) -> Result<Arc<Roster>, ApiError> {
    let store = setting.store.clone();
    let roster = blocking(move || load_doc(store.as_ref(), &DocId::Roster))
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    let AnyDoc::Roster(roster) = roster else {
        return Err(ApiError::internal(&"the roster is not a roster"));
    };
    Ok(Arc::new(roster))
}

/// The id under `key` (`parent` or `staff`) of a signed-in session, and when it signed in.
async fn signed_in_as(session: &Session, key: &str) -> Result<Option<(String, i64)>, ApiError> {
    let id: Option<String> = session.get(key).await.map_err(|e| session_error(&e))?;
    let at: Option<i64> = session
        .get(SIGNED_IN_AT)
        .await
        .map_err(|e| session_error(&e))?;
    Ok(id.zip(at))
}

/// The request's session (tower-sessions' layer puts it there).
async fn session_of(parts: &mut Parts, st: &Arc<PortalState>) -> Result<Session, ApiError> {
    Session::from_request_parts(parts, st)
        .await
        .map_err(|(_, m)| ApiError::internal(&m))
}

/// Whether `id` is an active manager in `roster`: the only staff who may use the console.
pub(crate) fn is_manager(roster: &Roster, id: &StaffId) -> bool {
    roster
        .staff(id)
        .is_some_and(|s| s.active && s.role == Role::Manager)
}

/// The signed-in parent of a request, with the roster as it stands now. A request without one
/// is answered 401 `signed_out`; a session past its absolute expiry, or whose parent is no
/// longer in the roster, is ended on the server first.
pub(crate) struct SignedIn {
    pub(crate) parent: ParentId,
    /// Shared with the setting's other requests while the stored roster is unchanged.
    pub(crate) roster: Arc<Roster>,
    pub(crate) session: Session,
    pub(crate) setting: Arc<AppState>,
}

pub(crate) fn signed_out() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "signed_out",
        "Sign in to see this.",
    )
}

impl FromRequestParts<Arc<PortalState>> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &Arc<PortalState>,
    ) -> Result<Self, Self::Rejection> {
        let session = session_of(parts, st).await?;
        let Some((parent, signed_in_at)) = signed_in_as(&session, PARENT).await? else {
            return Err(signed_out());
        };
        let now = now_ms();
        let parent = ParentId::parse(&parent).map_err(|_| signed_out())?;
        if now >= signed_in_at.saturating_add(st.absolute_ms) {
            session.flush().await.map_err(|e| session_error(&e))?;
            return Err(signed_out());
        }
        let setting = st.setting.clone();
        let roster = roster_now(&setting).await?;
        if roster.parent(&parent).is_none() {
            session.flush().await.map_err(|e| session_error(&e))?;
            return Err(signed_out());
        }
        extend(&session, now, signed_in_at, (st.idle_ms, st.absolute_ms));
        Ok(SignedIn {
            parent,
            roster,
            session,
            setting,
        })
    }
}

/// The signed-in manager of a request: an active member of staff with the manager role in the
/// roster as it stands now, signed in with a password and a second factor. Anyone else (signed
/// out, a parent, half signed in) is answered 404 `not_found`, so the console's API shows
/// nothing of itself; a session past its absolute expiry, or whose staff member was
/// deactivated or is no longer a manager, is ended on the server first.
pub(crate) struct Manager {
    pub(crate) staff: StaffId,
    pub(crate) roster: Arc<Roster>,
    pub(crate) session: Session,
    pub(crate) setting: Arc<AppState>,
    /// For the audit log: `staff:<id>` and the client (address and user agent).
    pub(crate) by: By,
}

impl Manager {
    /// The manager of `parts`' session, or `None` when it is not a manager's (ended first
    /// when it was one and no longer may be).
    pub(crate) async fn of(
        parts: &mut Parts,
        st: &Arc<PortalState>,
    ) -> Result<Option<Manager>, ApiError> {
        let session = session_of(parts, st).await?;
        let Some((staff, signed_in_at)) = signed_in_as(&session, STAFF).await? else {
            return Ok(None);
        };
        let now = now_ms();
        let Ok(staff) = StaffId::parse(&staff) else {
            return Ok(None);
        };
        if now >= signed_in_at.saturating_add(st.console_absolute_ms) {
            session.flush().await.map_err(|e| session_error(&e))?;
            return Ok(None);
        }
        let setting = st.setting.clone();
        let roster = roster_now(&setting).await?;
        if !is_manager(&roster, &staff) {
            session.flush().await.map_err(|e| session_error(&e))?;
            return Ok(None);
        }
        extend(
            &session,
            now,
            signed_in_at,
            (st.console_idle_ms, st.console_absolute_ms),
        );
        let addr = parts
            .extensions
            .get::<Peer>()
            .map(|p| p.addr.ip().to_string())
            .unwrap_or_default();
        let agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|a| a.chars().take(200).collect::<String>())
            .unwrap_or_default();
        Ok(Some(Manager {
            by: By {
                actor: format!("staff:{staff}"),
                client: Some(format!("{addr} {agent}").trim().to_owned()),
            },
            staff,
            roster,
            session,
            setting,
        }))
    }
}

impl FromRequestParts<Arc<PortalState>> for Manager {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &Arc<PortalState>,
    ) -> Result<Self, Self::Rejection> {
        Manager::of(parts, st)
            .await?
            .ok_or_else(ApiError::not_found)
    }
}

/// Whoever is signed in on a request: a parent or a manager (`GET /api/v1/me`); 401
/// `signed_out` for anyone else.
pub(crate) enum Someone {
    Parent(SignedIn),
    Manager(Manager),
}

impl FromRequestParts<Arc<PortalState>> for Someone {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &Arc<PortalState>,
    ) -> Result<Self, Self::Rejection> {
        let session = session_of(parts, st).await?;
        let staff: Option<String> = session.get(STAFF).await.map_err(|e| session_error(&e))?;
        if staff.is_some() {
            return Manager::of(parts, st)
                .await?
                .map(Someone::Manager)
                .ok_or_else(signed_out);
        }
        SignedIn::from_request_parts(parts, st)
            .await
            .map(Someone::Parent)
    }
}
