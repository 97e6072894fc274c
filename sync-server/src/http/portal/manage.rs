//! The console's roster, staff, parents, policy and audit-log endpoints under
//! `/api/v1/admin/`. Each handler checks the request and calls the admin API the CLI calls
//! ([`crate::manage`], [`crate::admin`]) as the manager, so nothing is implemented twice;
//! roster changes are announced to the watching tablets.
//!
//! Every handler takes [`Manager`] first: to anyone else each answers 404. Removing a parent's
//! link takes a fresh second factor (`{totp}`).

use axum::Json;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sprig_core::{Consent, Role};
use sprig_proto::DocId;
use utoipa::ToSchema;

use super::account::{FreshCode, require_fresh_code};
use super::api::{ErrorBody, run};
use super::console::admin_err;
use super::extract::{JsonBody, Params};
use super::session::Manager;
use crate::admin::{self, AdminError, InviteOutput, now_ms};
use crate::http::ApiError;
use crate::manage::{
    self, AuditRow, ChildChange, ChildRow, OffsiteOutput, ParentRow, RoomRow, SettingPolicy,
    StaffChange, StaffRow,
};
use crate::store::AuditQuery;

/// Runs `f` on the setting's store as the manager; refusals become the console's answers.
async fn admin_call<T: Send + 'static>(
    m: &Manager,
    f: impl FnOnce(&dyn crate::store::ServerStore, &crate::By) -> Result<T, AdminError> + Send + 'static,
) -> Result<T, ApiError> {
    let by = m.by.clone();
    run(&m.setting, move |s| f(s, &by))
        .await?
        .map_err(|e| admin_err(&e))
}

/// Tells the watching tablets the roster changed, so they sync it now.
fn roster_changed(m: &Manager) {
    m.setting.changes.announce_written(vec![DocId::Roster]);
}

fn consent_of(word: Option<&str>) -> Result<Option<Consent>, ApiError> {
    match word {
        None => Ok(None),
        Some("yes") => Ok(Some(Consent::Yes)),
        Some("no") => Ok(Some(Consent::No)),
        Some(_) => Err(ApiError::bad_request("`photo_consent` is `yes` or `no`.")),
    }
}

fn role_of(word: Option<&str>) -> Result<Option<Role>, ApiError> {
    match word {
        None => Ok(None),
        Some("manager") => Ok(Some(Role::Manager)),
        Some("practitioner") => Ok(Some(Role::Practitioner)),
        Some(_) => Err(ApiError::bad_request(
            "`role` is `manager` or `practitioner`.",
        )),
    }
}

// ---- rooms ----

/// The rooms, by name, with how many children attend each.
#[utoipa::path(get, path = "/api/v1/admin/rooms", tag = "admin",
    responses(
        (status = 200, body = [RoomRow]),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting"),
    ))]
pub(crate) async fn rooms(m: Manager) -> Result<Json<Vec<RoomRow>>, ApiError> {
    Ok(Json(admin_call(&m, |s, _| manage::room_list(s)).await?))
}

// ---- children ----

/// The children, by name: room, key worker, photo consent, status, linked parents.
#[utoipa::path(get, path = "/api/v1/admin/children", tag = "admin",
    responses(
        (status = 200, body = [ChildRow]),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting"),
    ))]
pub(crate) async fn children(m: Manager) -> Result<Json<Vec<ChildRow>>, ApiError> {
    Ok(Json(admin_call(&m, |s, _| manage::child_list(s)).await?))
}

/// `POST /api/v1/admin/children`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct NewChild {
    /// 1 to 200 characters.
    name: String,
    /// Their key worker: an active member of staff's id.
    key_worker: Option<String>,
    /// Their room's name (made when there is none of that name).
    room: Option<String>,
    /// `YYYY-MM-DD`.
    date_of_birth: Option<String>,
    /// `yes` or `no`, as recorded on paper; left out, their parents are asked in the portal.
    photo_consent: Option<String>,
}

/// Puts a child on the roster, with an empty journal; the tablets get them at their next
/// sync.
#[utoipa::path(post, path = "/api/v1/admin/children", tag = "admin", request_body = NewChild,
    responses(
        (status = 201, body = ChildRow),
        (status = 400, body = ErrorBody, description = "A bad name or date, no key worker, or one who is deactivated"),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting, or no such key worker"),
    ))]
pub(crate) async fn add_child(
    m: Manager,
    JsonBody(req): JsonBody<NewChild>,
) -> Result<(StatusCode, Json<ChildRow>), ApiError> {
    let consent = consent_of(req.photo_consent.as_deref())?.unwrap_or(Consent::NotAsked);
    let Some(key_worker) = req.key_worker.filter(|k| !k.trim().is_empty()) else {
        return Err(ApiError::bad_request("Choose the child's key worker."));
    };
    if sprig_core::StaffId::parse(key_worker.trim()).is_err() {
        return Err(admin_err(&AdminError::UnknownStaff(key_worker)));
    }
    let row = admin_call(&m, move |s, by| {
        let id = admin::child_add_by(
            s,
            &admin::NewChildArgs {
                name: &req.name,
                key_worker: key_worker.trim(),
                room: req.room.as_deref().filter(|r| !r.trim().is_empty()),
                photo_consent: consent,
                date_of_birth: req
                    .date_of_birth
                    .as_deref()
                    .filter(|d| !d.trim().is_empty()),
            },
            by,
        )?;
        manage::child_list(s)?
            .into_iter()
            .find(|c| c.id == id.as_str())
            .ok_or_else(|| AdminError::UnknownChild(id.to_string()))
    })
    .await?;
    roster_changed(&m);
    Ok((StatusCode::CREATED, Json(row)))
}

/// `PATCH /api/v1/admin/children/{id}`: only the fields given change.
#[derive(Deserialize, ToSchema)]
pub(crate) struct ChildPatch {
    /// A new key worker's staff id.
    key_worker: Option<String>,
    /// A room's name (made when there is none); `""` takes them out of every room.
    room: Option<String>,
    /// `YYYY-MM-DD`.
    date_of_birth: Option<String>,
    /// `yes` or `no`, as recorded on paper.
    photo_consent: Option<String>,
    /// The day they leave, `YYYY-MM-DD`: from that day they are marked left.
    leaving: Option<String>,
}

/// Changes a child's key worker, room, date of birth, photo consent or leaving date, all or
/// nothing.
#[utoipa::path(patch, path = "/api/v1/admin/children/{id}", tag = "admin",
    params(("id" = String, Path, description = "The child's id")),
    request_body = ChildPatch,
    responses(
        (status = 200, body = ChildRow),
        (status = 400, body = ErrorBody, description = "Nothing to change, a bad date, a deactivated key worker"),
        (status = 404, body = ErrorBody, description = "No such child or key worker, or not a signed-in manager of this setting"),
    ))]
pub(crate) async fn change_child(
    m: Manager,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ChildPatch>,
) -> Result<Json<ChildRow>, ApiError> {
    let change = ChildChange {
        key_worker: req.key_worker,
        room: req.room,
        photo_consent: consent_of(req.photo_consent.as_deref())?,
        leaving: req.leaving,
        date_of_birth: req.date_of_birth,
    };
    let row = admin_call(&m, move |s, by| manage::child_set(s, &id, &change, by)).await?;
    roster_changed(&m);
    Ok(Json(row))
}

// ---- staff ----

/// The staff, by name: role, whether active, console address.
#[utoipa::path(get, path = "/api/v1/admin/staff", tag = "admin",
    responses(
        (status = 200, body = [StaffRow]),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting"),
    ))]
pub(crate) async fn staff(m: Manager) -> Result<Json<Vec<StaffRow>>, ApiError> {
    Ok(Json(admin_call(&m, |s, _| manage::staff_list(s)).await?))
}

/// `POST /api/v1/admin/staff`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct NewStaff {
    /// 1 to 200 characters.
    name: String,
    /// `manager` or `practitioner`.
    role: String,
    /// Their tablet PIN, 4 to 8 digits.
    pin: String,
    /// For a manager: the address they sign in to the console with (with `password`).
    email: Option<String>,
    /// For a manager: their console password (at least 12 characters, not a common one).
    password: Option<String>,
}

impl std::fmt::Debug for NewStaff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewStaff")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Adds a member of staff with a tablet PIN, and for a manager a console sign-in.
#[utoipa::path(post, path = "/api/v1/admin/staff", tag = "admin", request_body = NewStaff,
    responses(
        (status = 201, body = StaffRow),
        (status = 400, body = ErrorBody, description = "A bad name, role, PIN, address or password"),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting"),
        (status = 409, body = ErrorBody, description = "`email_in_use`"),
    ))]
pub(crate) async fn add_staff(
    m: Manager,
    JsonBody(req): JsonBody<NewStaff>,
) -> Result<(StatusCode, Json<StaffRow>), ApiError> {
    let Some(role) = role_of(Some(req.role.as_str()))? else {
        return Err(ApiError::bad_request("Choose a role."));
    };
    let email = req.email.filter(|e| !e.trim().is_empty());
    let password = req.password.filter(|p| !p.is_empty());
    if email.is_some() != password.is_some() {
        return Err(ApiError::bad_request(
            "Give both an e-mail address and a password for a console sign-in, or neither.",
        ));
    }
    let row = admin_call(&m, move |s, by| {
        let login = email
            .as_deref()
            .zip(password.as_deref())
            .map(|(email, password)| admin::StaffLogin { email, password });
        let id = admin::staff_add_by(s, &req.name, role, &req.pin, login, by)?;
        manage::staff_list(s)?
            .into_iter()
            .find(|r| r.id == id.as_str())
            .ok_or_else(|| AdminError::UnknownStaff(id.to_string()))
    })
    .await?;
    roster_changed(&m);
    Ok((StatusCode::CREATED, Json(row)))
}

/// `PATCH /api/v1/admin/staff/{id}`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct StaffPatch {
    /// `manager` or `practitioner`.
    role: Option<String>,
    /// `true` deactivates them: their PIN stops working on every tablet at its next sync.
    deactivate: Option<bool>,
    /// A new tablet PIN, 4 to 8 digits.
    pin: Option<String>,
}

impl std::fmt::Debug for StaffPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffPatch")
            .field("role", &self.role)
            .field("deactivate", &self.deactivate)
            .finish_non_exhaustive()
    }
}

/// Changes a member of staff's role, deactivates them or resets their PIN, all or nothing.
/// The setting always keeps one active manager.
#[utoipa::path(patch, path = "/api/v1/admin/staff/{id}", tag = "admin",
    params(("id" = String, Path, description = "The staff member's id")),
    request_body = StaffPatch,
    responses(
        (status = 200, body = StaffRow),
        (status = 400, body = ErrorBody, description = "Nothing to change, a bad role or PIN"),
        (status = 404, body = ErrorBody, description = "No such member of staff, or not a signed-in manager of this setting"),
        (status = 409, body = ErrorBody, description = "`last_manager`: the setting's last active manager"),
    ))]
pub(crate) async fn change_staff(
    m: Manager,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<StaffPatch>,
) -> Result<Json<StaffRow>, ApiError> {
    let change = StaffChange {
        role: role_of(req.role.as_deref())?,
        deactivate: req.deactivate.unwrap_or(false),
        pin: req.pin,
    };
    let row = admin_call(&m, move |s, by| manage::staff_set(s, &id, &change, by)).await?;
    roster_changed(&m);
    Ok(Json(row))
}

// ---- parents ----

/// Parents and relatives, by name: address, children, whether they have signed up.
#[utoipa::path(get, path = "/api/v1/admin/parents", tag = "admin",
    responses(
        (status = 200, body = [ParentRow]),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting"),
    ))]
pub(crate) async fn parents(m: Manager) -> Result<Json<Vec<ParentRow>>, ApiError> {
    Ok(Json(admin_call(&m, |s, _| manage::parent_list(s)).await?))
}

/// `POST /api/v1/admin/parents`: an invitation, as `sprig-server parent invite`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct NewParent {
    /// 1 to 200 characters.
    name: String,
    /// The address they will sign in with.
    email: String,
    /// The ids of their children (at least one).
    children: Vec<String>,
}

/// A one-time invitation link, to give the parent.
#[derive(serde::Serialize, ToSchema)]
pub(crate) struct Invitation {
    /// The parent's id.
    id: String,
    /// `PUBLIC_URL/#/invite/TOKEN`: works once, until `expires_at`.
    link: String,
    /// RFC 3339.
    expires_at: String,
}

impl From<InviteOutput> for Invitation {
    fn from(o: InviteOutput) -> Invitation {
        Invitation {
            id: o.id,
            link: o.link,
            expires_at: o.expires_at,
        }
    }
}

/// Invites a parent or relative: they are added, linked to their children, and given a
/// one-time link (7 days) with which they choose their password.
#[utoipa::path(post, path = "/api/v1/admin/parents", tag = "admin", request_body = NewParent,
    responses(
        (status = 201, body = Invitation),
        (status = 400, body = ErrorBody, description = "A bad name or address, or no children"),
        (status = 404, body = ErrorBody, description = "No such child, or not a signed-in manager of this setting"),
        (status = 409, body = ErrorBody, description = "`email_in_use`"),
    ))]
pub(crate) async fn invite(
    m: Manager,
    JsonBody(req): JsonBody<NewParent>,
) -> Result<(StatusCode, Json<Invitation>), ApiError> {
    let out = admin_call(&m, move |s, by| {
        let roster = manage::roster(s)?;
        for c in &req.children {
            let known = sprig_core::ChildId::parse(c.trim())
                .ok()
                .is_some_and(|id| roster.child(&id).is_some());
            if !known {
                return Err(AdminError::UnknownChild(c.clone()));
            }
        }
        admin::parent_invite_by(s, &req.email, &req.name, &req.children, now_ms(), by)
    })
    .await?;
    roster_changed(&m);
    Ok((StatusCode::CREATED, Json(out.into())))
}

/// A new invitation link for a parent who has not signed up yet; earlier links stop working.
#[utoipa::path(post, path = "/api/v1/admin/parents/{id}/invitation", tag = "admin",
    params(("id" = String, Path, description = "The parent's id")),
    responses(
        (status = 201, body = Invitation),
        (status = 400, body = ErrorBody, description = "They have already set a password"),
        (status = 404, body = ErrorBody, description = "No such parent, or not a signed-in manager of this setting"),
    ))]
pub(crate) async fn reinvite(
    m: Manager,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Invitation>), ApiError> {
    let out = admin_call(&m, move |s, by| {
        admin::parent_reinvite(s, &id, now_ms(), by)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(out.into())))
}

/// `POST /api/v1/admin/parents/{id}/links`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct Link {
    child_id: String,
}

/// Links a parent or relative to another child's journal (a second child, a grandparent).
#[utoipa::path(post, path = "/api/v1/admin/parents/{id}/links", tag = "admin",
    params(("id" = String, Path, description = "The parent's id")),
    request_body = Link,
    responses(
        (status = 200, body = ParentRow),
        (status = 404, body = ErrorBody, description = "No such parent or child, or not a signed-in manager of this setting"),
    ))]
pub(crate) async fn link(
    m: Manager,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Link>,
) -> Result<Json<ParentRow>, ApiError> {
    let row = admin_call(&m, move |s, by| {
        manage::parent_link(s, &id, &req.child_id, by)
    })
    .await?;
    roster_changed(&m);
    Ok(Json(row))
}

/// Removes a parent's link to a child, confirmed with a fresh second factor: from their next
/// request they see nothing of that journal.
#[utoipa::path(delete, path = "/api/v1/admin/parents/{id}/links/{child_id}", tag = "admin",
    params(
        ("id" = String, Path, description = "The parent's id"),
        ("child_id" = String, Path, description = "The child's id"),
    ),
    request_body = FreshCode,
    responses(
        (status = 200, body = ParentRow),
        (status = 400, body = ErrorBody, description = "They are not linked"),
        (status = 403, body = ErrorBody, description = "`fresh_code_required`: no code, or a wrong or used one"),
        (status = 404, body = ErrorBody, description = "No such parent or child, or not a signed-in manager of this setting"),
    ))]
pub(crate) async fn unlink(
    m: Manager,
    Path((id, child)): Path<(String, String)>,
    JsonBody(body): JsonBody<FreshCode>,
) -> Result<Json<ParentRow>, ApiError> {
    require_fresh_code(&m, &body).await?;
    let row = admin_call(&m, move |s, by| manage::parent_unlink(s, &id, &child, by)).await?;
    roster_changed(&m);
    Ok(Json(row))
}

// ---- devices ----

/// `POST /api/v1/admin/devices/{id}/offsite`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct Offsite {
    /// When the permission ends (RFC 3339), at most 31 days ahead.
    until: String,
}

/// Lets a tablet sync from outside the setting's allowed networks until a time; the
/// permission and its end are in the audit log.
#[utoipa::path(post, path = "/api/v1/admin/devices/{id}/offsite", tag = "admin",
    params(("id" = String, Path, description = "The device's id")),
    request_body = Offsite,
    responses(
        (status = 200, body = OffsiteOutput),
        (status = 400, body = ErrorBody, description = "Not a time, in the past, or more than 31 days ahead"),
        (status = 404, body = ErrorBody, description = "No such device, or not a signed-in manager of this setting"),
    ))]
pub(crate) async fn offsite(
    m: Manager,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Offsite>,
) -> Result<Json<OffsiteOutput>, ApiError> {
    let out = admin_call(&m, move |s, by| {
        let until = manage::parse_time("until", &req.until)?;
        manage::device_permit_offsite(s, &id, until, by)
    })
    .await?;
    Ok(Json(out))
}

/// `POST /api/v1/admin/devices/{id}/custody`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct CustodyRecord {
    /// `checked_out` (taken out of the cupboard) or `returned`.
    event: String,
    /// Who took it, or where to: one line, at most 200 characters.
    note: Option<String>,
}

/// Records that a tablet was checked out of the locked cupboard or returned to it; its
/// custody log (the audit log for it) shows the record.
#[utoipa::path(post, path = "/api/v1/admin/devices/{id}/custody", tag = "admin",
    params(("id" = String, Path, description = "The device's id")),
    request_body = CustodyRecord,
    responses(
        (status = 201, body = manage::CustodyOutput),
        (status = 400, body = ErrorBody, description = "An unknown event, or a note too long"),
        (status = 404, body = ErrorBody, description = "No such device, or not a signed-in manager of this setting"),
    ))]
pub(crate) async fn custody(
    m: Manager,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CustodyRecord>,
) -> Result<(StatusCode, Json<manage::CustodyOutput>), ApiError> {
    let event = match req.event.as_str() {
        "checked_out" => manage::Custody::CheckedOut,
        "returned" => manage::Custody::Returned,
        _ => {
            return Err(ApiError::bad_request(
                "`event` is `checked_out` or `returned`.",
            ));
        }
    };
    let out = admin_call(&m, move |s, by| {
        manage::device_custody(s, &id, event, req.note.as_deref(), by)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

// ---- the audit log ----

/// `?device=&staff=&child=&action=&since=&until=&limit=`.
#[derive(Deserialize, utoipa::IntoParams)]
pub(crate) struct AuditParams {
    /// Events about this device.
    device: Option<String>,
    /// Events done by, or naming, this member of staff.
    staff: Option<String>,
    /// Events naming this child.
    child: Option<String>,
    /// Events of this action (`device_wipe`, `child_set`, …).
    action: Option<String>,
    /// Events at or after this time (RFC 3339).
    since: Option<String>,
    /// Events before this time (RFC 3339).
    until: Option<String>,
    /// At most this many (1 to 5,000; 500 when left out).
    limit: Option<String>,
}

fn audit_query(p: AuditParams) -> Result<AuditQuery, ApiError> {
    let some = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let time = |what: &str, v: Option<String>| {
        some(v)
            .map(|v| manage::parse_time(what, &v))
            .transpose()
            .map_err(|e| admin_err(&e))
    };
    let limit = match some(p.limit) {
        None => 500,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=manage::MAX_AUDIT_ROWS).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`limit` is a number from 1 to {}.",
                    manage::MAX_AUDIT_ROWS
                ))
            })?,
    };
    Ok(AuditQuery {
        since: time("since", p.since)?,
        until: time("until", p.until)?,
        device: some(p.device),
        staff: some(p.staff),
        child: some(p.child),
        action: some(p.action),
        limit,
    })
}

/// The audit log, newest first, filtered by tablet, staff member, child, action and time.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", params(AuditParams),
    responses(
        (status = 200, body = [AuditRow]),
        (status = 400, body = ErrorBody, description = "A time that is not RFC 3339, or a bad limit"),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting"),
    ))]
pub(crate) async fn audit(
    m: Manager,
    Params(p): Params<AuditParams>,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    let q = audit_query(p)?;
    Ok(Json(
        admin_call(&m, move |s, _| manage::audit_list(s, &q)).await?,
    ))
}

/// The audit log as CSV, with the same filters: exports go through management only.
#[utoipa::path(get, path = "/api/v1/admin/audit.csv", tag = "admin", params(AuditParams),
    responses(
        (status = 200, description = "CSV, a header line first", content_type = "text/csv"),
        (status = 400, body = ErrorBody, description = "A time that is not RFC 3339, or a bad limit"),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting"),
    ))]
pub(crate) async fn audit_csv(
    m: Manager,
    Params(p): Params<AuditParams>,
) -> Result<Response, ApiError> {
    let q = audit_query(p)?;
    let csv = admin_call(&m, move |s, by| {
        let rows = manage::audit_list(s, &q)?;
        admin::audit_by(s, by, None, "audit_export", format!("rows={}", rows.len()))?;
        Ok(manage::audit_csv(&rows))
    })
    .await?;
    let mut r = csv.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"sprig-audit.csv\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

// ---- policy ----

/// The setting's policy: lease, wrong-PIN limit, inactivity lock, allowed networks,
/// not-observed days, and the parents' agreement.
#[utoipa::path(get, path = "/api/v1/admin/policy", tag = "admin",
    responses(
        (status = 200, body = SettingPolicy),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting"),
    ))]
pub(crate) async fn policy(m: Manager) -> Result<Json<SettingPolicy>, ApiError> {
    Ok(Json(
        admin_call(&m, |s, _| manage::setting_policy(s)).await?,
    ))
}

/// Sets the whole policy, checked first; tablets apply it at their next sync, parents are
/// asked to agree again when the agreement's version changes.
#[utoipa::path(put, path = "/api/v1/admin/policy", tag = "admin", request_body = SettingPolicy,
    responses(
        (status = 200, body = SettingPolicy),
        (status = 400, body = ErrorBody, description = "Values that do not fit together, a bad network, an agreement changed without a new version"),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting"),
    ))]
pub(crate) async fn set_policy(
    m: Manager,
    JsonBody(req): JsonBody<SettingPolicy>,
) -> Result<Json<SettingPolicy>, ApiError> {
    let out = admin_call(&m, move |s, by| manage::set_setting_policy(s, &req, by)).await?;
    m.setting.changes.announce_written(vec![DocId::Setting]);
    Ok(Json(out))
}

// ---- the review gate ----

/// The staff observations the review gate holds back from parents, oldest first; empty while
/// the gate is off.
#[utoipa::path(get, path = "/api/v1/admin/reviews", tag = "admin",
    responses(
        (status = 200, body = [manage::AwaitingReview]),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting"),
    ))]
pub(crate) async fn reviews(m: Manager) -> Result<Json<Vec<manage::AwaitingReview>>, ApiError> {
    let (reads, roster) = (m.setting.reads.clone(), m.roster.clone());
    let rows = admin_call(&m, move |s, _| manage::awaiting_review(s, &reads, &roster)).await?;
    Ok(Json(rows.into_iter().map(|(_, r)| r).collect()))
}

/// Whom a review reached.
#[derive(serde::Serialize, ToSchema)]
pub(crate) struct Reviewed {
    entry_id: String,
    /// The children whose journals now show it to their parents.
    children: Vec<String>,
}

/// Puts a staff observation held back by the review gate in the journal: its children's
/// parents see it from now on (their open pages are told).
#[utoipa::path(post, path = "/api/v1/admin/reviews/{id}", tag = "admin",
    params(("id" = String, Path, description = "The observation's id")),
    responses(
        (status = 200, body = Reviewed),
        (status = 404, body = ErrorBody, description = "Not waiting for review, or not a signed-in manager of this setting"),
    ))]
pub(crate) async fn review(m: Manager, Path(id): Path<String>) -> Result<Json<Reviewed>, ApiError> {
    let (reads, roster) = (m.setting.reads.clone(), m.roster.clone());
    let entry = id.clone();
    let children = admin_call(&m, move |s, by| {
        manage::review_entry(s, &reads, &roster, &entry, by)
    })
    .await?;
    m.setting
        .changes
        .announce_written(children.iter().cloned().map(DocId::Journal).collect());
    Ok(Json(Reviewed {
        entry_id: id,
        children: children.iter().map(ToString::to_string).collect(),
    }))
}

// ---- media under review ----

/// A photo or video of the setting's journals, for a manager reviewing a contribution:
/// streamed inline, never cached.
#[utoipa::path(get, path = "/api/v1/admin/media/{id}", tag = "admin",
    params(("id" = String, Path, description = "The SHA-256 of the photo or video, hex")),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream"),
        (status = 404, body = ErrorBody, description = "No such media in the setting's journals, or not a signed-in manager of this setting"),
    ))]
pub(crate) async fn media(m: Manager, Path(id): Path<String>) -> Result<Response, ApiError> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found());
    }
    let sha = id.to_ascii_lowercase();
    let mime = {
        let (sha, reads, roster) = (sha.clone(), m.setting.reads.clone(), m.roster.clone());
        run(&m.setting, move |s| {
            journal_media_mime(s, &reads, &roster, &sha)
        })
        .await?
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(ApiError::not_found)?
    };
    super::api::media_response(&m.setting, &sha, &mime).await
}

/// The type of media `sha` as an entry of one of the setting's journals holds it, if any.
fn journal_media_mime(
    s: &dyn crate::store::ServerStore,
    reads: &crate::docs::ReadCache,
    roster: &sprig_core::Roster,
    sha: &str,
) -> Result<Option<String>, crate::docs::DocStoreError> {
    for c in roster.children() {
        for e in reads.entries(s, &c.id)?.iter() {
            if let Some(m) = e.media.iter().find(|m| m.sha256.to_hex() == sha) {
                return Ok(Some(m.mime.clone()));
            }
        }
    }
    Ok(None)
}
