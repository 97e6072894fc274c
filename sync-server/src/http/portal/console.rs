//! The managers' console API under `/api/v1/admin/`: the device register and its lifecycle
//! steps, enrolment codes, coverage monitoring, and the review of parents' contributions.
//! Each handler checks the request and calls the admin API the CLI calls ([`crate::admin`],
//! [`crate::monitoring`]) or, for a review, writes the journal as the manager, so nothing is
//! implemented twice.
//!
//! Every handler takes [`Manager`] first: anyone who is not a signed-in manager of this setting
//! (signed out, a parent, half signed in, a practitioner) is answered 404 before anything else
//! is read. Revoke, wipe and retire take a fresh second factor (`{totp}`).

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sprig_core::{Actor, ChildId, EntryId, EntryKind, EntryStatus, Roster, RuleError, Timestamp};
use sprig_proto::DocId;
use utoipa::ToSchema;

use super::account::{FreshCode, qr_svg, require_fresh_code};
use super::api::{ErrorBody, run};
use super::extract::{JsonBody, Params};
use super::session::Manager;
use crate::admin::{self, AdminError, Lifecycle, now_ms, rfc3339};
use crate::docs::{DocStoreError, ReadCache, edit_journal};
use crate::http::ApiError;
use crate::monitoring::{self, Coverage, MonitoringError};
use crate::policy::Policy;
use crate::store::{DeviceStatus, ServerStore};

/// A device not seen for this long while active is reported missing: a day.
pub(crate) const MISSING_AFTER_MS: i64 = 24 * 3_600_000;
/// The longest reason for turning a contribution down, in characters.
pub(crate) const MAX_REASON_CHARS: usize = 2_000;

/// What the admin API's refusals are for a manager in the console.
pub(super) fn admin_err(e: &AdminError) -> ApiError {
    let gone = |what: &str| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("There is no such {what}. Reload the list."),
        )
    };
    match e {
        AdminError::UnknownDevice(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "There is no such tablet in the register. Reload the list of tablets.",
        ),
        AdminError::UnknownChild(_) | AdminError::Rule(RuleError::UnknownChild(_)) => {
            gone("child on the roster")
        }
        AdminError::UnknownStaff(_) | AdminError::Rule(RuleError::UnknownStaff(_)) => {
            gone("member of staff on the roster")
        }
        AdminError::UnknownParent(_) | AdminError::Rule(RuleError::UnknownParent(_)) => {
            gone("parent on the roster")
        }
        AdminError::WrongDeviceState { .. } => {
            ApiError::new(StatusCode::CONFLICT, "wrong_state", e.to_string())
        }
        AdminError::LastManager => ApiError::new(
            StatusCode::CONFLICT,
            "last_manager",
            "This is the setting's last active manager. Make another member of staff a manager first.",
        ),
        AdminError::Rule(RuleError::EmailInUse) => ApiError::new(
            StatusCode::CONFLICT,
            "email_in_use",
            "Someone already signs in with that e-mail address.",
        ),
        AdminError::InvalidInput(m) => ApiError::bad_request(m.clone()),
        AdminError::Rule(RuleError::Document(_))
        | AdminError::Policy(crate::policy::PolicyError::Store(_)) => ApiError::internal(e),
        AdminError::InvalidPin
        | AdminError::PasswordTooShort
        | AdminError::PasswordRefused(_)
        | AdminError::Rule(_) => ApiError::bad_request(sentence(&e.to_string())),
        AdminError::Policy(p) => ApiError::bad_request(sentence(&p.to_string())),
        other => ApiError::internal(other),
    }
}

/// `s` with a capital first letter and a full stop, as the console's messages are written.
fn sentence(s: &str) -> String {
    let mut c = s.chars();
    let mut out = c
        .next()
        .map(|f| f.to_uppercase().collect::<String>())
        .unwrap_or_default();
    out.push_str(c.as_str());
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

// ---- devices ----

/// A tablet in the register, as the console lists it.
#[derive(Serialize, ToSchema)]
pub(crate) struct ConsoleDevice {
    id: String,
    name: String,
    /// `active`, `locked`, `quarantined`, `revoked`, `wipe-pending`, `wiped`,
    /// `retire-pending`, `retired`.
    status: String,
    /// Whether it is locked: it reported itself locked, or has not checked in within the
    /// policy's `lock_after`.
    locked: bool,
    /// Its last connection (RFC 3339) or `null`.
    last_seen: Option<String>,
    /// Its last completed sync (RFC 3339) or `null`.
    last_sync: Option<String>,
    app_version: Option<String>,
    /// Documents with changes it has not yet synced, as last reported.
    unsynced_docs: u64,
    /// Photos and videos it has not yet handed over, as last reported.
    unsynced_media: u64,
    /// When an active tablet locks unless it checks in again (RFC 3339), else `null`.
    lease_expires_at: Option<String>,
    /// Active, and not seen for a day: where is it?
    missing: bool,
    /// Until when it may sync from outside the allowed networks (RFC 3339), else `null`.
    off_site_until: Option<String>,
}

/// The register as of `now`, from the admin API's rows and the stored devices.
fn register(s: &dyn ServerStore, now: i64) -> Result<Vec<ConsoleDevice>, AdminError> {
    let policy = Policy::load(s)?;
    let lock_after_ms =
        i64::try_from(policy.lock_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    Ok(s.list_devices()?
        .into_iter()
        .map(|d| {
            let active = d.status == DeviceStatus::Active;
            let check_in = d.last_sync.unwrap_or(d.created_at);
            let seen = d.last_seen.unwrap_or(d.created_at).max(check_in);
            let off_site_until = d.offsite_until.filter(|u| *u > now).map(rfc3339);
            let row = admin::DeviceOutput::new(d, &policy, now);
            ConsoleDevice {
                locked: row.status == "locked",
                lease_expires_at: active.then(|| rfc3339(check_in.saturating_add(lock_after_ms))),
                missing: active && now.saturating_sub(seen) > MISSING_AFTER_MS,
                off_site_until,
                id: row.id,
                name: row.name,
                status: row.status,
                last_seen: row.last_seen,
                last_sync: row.last_sync,
                app_version: row.app_version,
                unsynced_docs: row.unsynced_docs,
                unsynced_media: row.unsynced_media,
            }
        })
        .collect())
}

/// The tablet register: status, last contact, what each has not yet synced, its lease.
#[utoipa::path(get, path = "/api/v1/admin/devices", tag = "admin",
    responses(
        (status = 200, body = [ConsoleDevice]),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting"),
    ))]
pub(crate) async fn devices(m: Manager) -> Result<Json<Vec<ConsoleDevice>>, ApiError> {
    let rows = run(&m.setting, |s| register(s, now_ms()))
        .await?
        .map_err(|e| admin_err(&e))?;
    Ok(Json(rows))
}

/// `POST /api/v1/admin/enrol-codes`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct NewEnrolCode {
    /// The name the tablet gets in the register, 1 to 200 characters.
    device_name: String,
}

/// A one-time enrolment code, to type on the tablet or scan from `qr_svg`.
#[derive(Serialize, ToSchema)]
pub(crate) struct EnrolCode {
    /// `XXXXX-XXXXX`.
    code: String,
    /// The server address the tablet connects to.
    url: String,
    /// `sha256:<hex>` of the setting's CA, which the tablet pins.
    ca_fingerprint: String,
    /// The QR code of `sprig://enrol?url=…&code=…&fp=…`, an SVG document.
    qr_svg: String,
    /// When the code stops working (RFC 3339).
    expires_at: String,
}

/// Makes a one-time code that enrols one tablet, with its QR code. It works for 10 minutes.
#[utoipa::path(post, path = "/api/v1/admin/enrol-codes", tag = "admin", request_body = NewEnrolCode,
    responses(
        (status = 201, body = EnrolCode),
        (status = 400, body = ErrorBody, description = "No name, or one over 200 characters"),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting"),
    ))]
pub(crate) async fn enrol_code(
    m: Manager,
    JsonBody(req): JsonBody<NewEnrolCode>,
) -> Result<(StatusCode, Json<EnrolCode>), ApiError> {
    let fingerprint = m.setting.ca.fingerprint().to_owned();
    let by = m.by.clone();
    let out = run(&m.setting, move |s| {
        admin::enrol_code_for(
            s,
            &fingerprint,
            &req.device_name,
            admin::DEFAULT_CODE_TTL,
            &by,
        )
    })
    .await?
    .map_err(|e| admin_err(&e))?;
    let qr_svg = qr_svg(out.qr).await?;
    Ok((
        StatusCode::CREATED,
        Json(EnrolCode {
            code: out.code,
            url: out.url,
            ca_fingerprint: out.ca_fingerprint,
            qr_svg,
            expires_at: out.expires_at,
        }),
    ))
}

/// A lifecycle step's outcome.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeviceStep {
    id: String,
    /// Its status now.
    status: String,
    /// Its status before.
    from: String,
    /// Whether this step changed it (false: it was already there, or past it).
    changed: bool,
}

impl From<admin::StatusOutput> for DeviceStep {
    fn from(o: admin::StatusOutput) -> DeviceStep {
        DeviceStep {
            id: o.id,
            status: o.status,
            from: o.from,
            changed: o.changed,
        }
    }
}

/// Revoke, wipe or retire: checked afresh with the manager's second factor, then the admin
/// API's step, audited as the manager.
async fn lifecycle(
    m: Manager,
    id: String,
    body: FreshCode,
    cmd: Lifecycle,
) -> Result<Json<DeviceStep>, ApiError> {
    require_fresh_code(&m, &body).await?;
    let by = m.by.clone();
    let out = run(&m.setting, move |s| {
        admin::device_lifecycle(s, &id, cmd, &by)
    })
    .await?
    .map_err(|e| admin_err(&e))?;
    Ok(Json(out.into()))
}

/// Revokes a tablet: refused from its next request, its open connection closed. What it has
/// not synced stays on it, unreadable without a PIN, and never reaches the server.
#[utoipa::path(post, path = "/api/v1/admin/devices/{id}/revoke", tag = "admin",
    params(("id" = String, Path, description = "The device's id")),
    request_body = FreshCode,
    responses(
        (status = 200, body = DeviceStep),
        (status = 403, body = ErrorBody, description = "`fresh_code_required`: no code, or a wrong or used one"),
        (status = 404, body = ErrorBody, description = "No such device, or not a signed-in manager of this setting"),
        (status = 409, body = ErrorBody, description = "`wrong_state`: its state does not allow this step"),
    ))]
pub(crate) async fn revoke(
    m: Manager,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<FreshCode>,
) -> Result<Json<DeviceStep>, ApiError> {
    lifecycle(m, id, body, Lifecycle::Revoke).await
}

/// Wipes a tablet at its next connection, before any sync: what it has not synced is lost.
#[utoipa::path(post, path = "/api/v1/admin/devices/{id}/wipe", tag = "admin",
    params(("id" = String, Path, description = "The device's id")),
    request_body = FreshCode,
    responses(
        (status = 200, body = DeviceStep),
        (status = 403, body = ErrorBody, description = "`fresh_code_required`: no code, or a wrong or used one"),
        (status = 404, body = ErrorBody, description = "No such device, or not a signed-in manager of this setting"),
        (status = 409, body = ErrorBody, description = "`wrong_state`: its state does not allow this step"),
    ))]
pub(crate) async fn wipe(
    m: Manager,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<FreshCode>,
) -> Result<Json<DeviceStep>, ApiError> {
    lifecycle(m, id, body, Lifecycle::Wipe).await
}

/// Retires a tablet: it syncs everything at its next connection, then wipes itself.
#[utoipa::path(post, path = "/api/v1/admin/devices/{id}/retire", tag = "admin",
    params(("id" = String, Path, description = "The device's id")),
    request_body = FreshCode,
    responses(
        (status = 200, body = DeviceStep),
        (status = 403, body = ErrorBody, description = "`fresh_code_required`: no code, or a wrong or used one"),
        (status = 404, body = ErrorBody, description = "No such device, or not a signed-in manager of this setting"),
        (status = 409, body = ErrorBody, description = "`wrong_state`: its state does not allow this step"),
    ))]
pub(crate) async fn retire(
    m: Manager,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<FreshCode>,
) -> Result<Json<DeviceStep>, ApiError> {
    lifecycle(m, id, body, Lifecycle::Retire).await
}

/// Releases a quarantined tablet: it may sync again, and its copies of the documents it was
/// refused for are replaced by the server's at its next sync (the refused changes stay held).
#[utoipa::path(post, path = "/api/v1/admin/devices/{id}/release", tag = "admin",
    params(("id" = String, Path, description = "The device's id")),
    responses(
        (status = 200, body = DeviceStep),
        (status = 404, body = ErrorBody, description = "No such device, or not a signed-in manager of this setting"),
        (status = 409, body = ErrorBody, description = "`wrong_state`: it is not quarantined"),
    ))]
pub(crate) async fn release(
    m: Manager,
    Path(id): Path<String>,
) -> Result<Json<DeviceStep>, ApiError> {
    let by = m.by.clone();
    let out = run(&m.setting, move |s| admin::device_release(s, &id, &by))
        .await?
        .map_err(|e| admin_err(&e))?;
    Ok(Json(out.into()))
}

// ---- monitoring ----

/// `?days=N`.
#[derive(Deserialize, utoipa::IntoParams)]
pub(crate) struct CoverageQuery {
    /// The period, in days up to today (1 to 400; 30 when left out).
    days: Option<String>,
}

/// Observations per child, per key worker, per area and per day over the last `days` days,
/// children not observed for the setting's number of days (14 unless the policy says
/// otherwise), observations corrected in the period, and contributions waiting for review.
#[utoipa::path(get, path = "/api/v1/admin/coverage", tag = "admin", params(CoverageQuery),
    responses(
        (status = 200, body = Coverage),
        (status = 400, body = ErrorBody, description = "`days` is not a number from 1 to 400"),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting"),
    ))]
pub(crate) async fn coverage(
    m: Manager,
    Params(q): Params<CoverageQuery>,
) -> Result<Json<Coverage>, ApiError> {
    let days = match q.days.as_deref() {
        None => 30,
        Some(d) => d
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=monitoring::MAX_DAYS).contains(d))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Choose a period of 1 to {} days.",
                    monitoring::MAX_DAYS
                ))
            })?,
    };
    let (reads, roster) = (m.setting.reads.clone(), m.roster.clone());
    let c = run(&m.setting, move |s| {
        // The setting's own threshold, as the tablets mark children.
        let quiet = match crate::docs::load_doc(s, &DocId::Setting)? {
            crate::docs::AnyDoc::Setting(d) => d.policies().not_observed_days,
            _ => monitoring::NOT_OBSERVED_DAYS,
        };
        monitoring::coverage(s, &reads, &roster, now_ms(), days, quiet)
    })
    .await?
    .map_err(|e| match e {
        MonitoringError::BadPeriod => ApiError::bad_request(e.to_string()),
        other => ApiError::internal(&other),
    })?;
    Ok(Json(c))
}

// ---- contributions ----

/// `?status=pending|approved|rejected|all`.
#[derive(Deserialize, utoipa::IntoParams)]
pub(crate) struct ContributionQuery {
    /// Which contributions: `pending` (when left out), `approved`, `rejected` or `all`.
    status: Option<String>,
}

/// A photo or video of a contribution.
#[derive(Serialize, ToSchema)]
pub(crate) struct ContributionMedia {
    /// Its SHA-256, hex.
    id: String,
    /// `photo` or `video`.
    kind: String,
    mime: String,
}

/// A parent's contribution, as a manager reviews it.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReviewItem {
    id: String,
    child_id: String,
    child_name: String,
    parent_id: String,
    parent_name: String,
    /// When it was sent (RFC 3339).
    created_at: String,
    text: String,
    media: Vec<ContributionMedia>,
    /// `pending`, `approved` or `rejected`.
    status: String,
}

fn status_word(s: EntryStatus) -> &'static str {
    match s {
        EntryStatus::Published => "approved",
        EntryStatus::Rejected => "rejected",
        _ => "pending",
    }
}

/// Every contribution of every child's journal whose status is `wanted` (all when `None`),
/// oldest first.
fn contributions_of(
    s: &dyn ServerStore,
    reads: &ReadCache,
    roster: &Roster,
    wanted: Option<&str>,
) -> Result<Vec<ReviewItem>, DocStoreError> {
    let mut out = Vec::new();
    for c in roster.children() {
        for e in reads.entries(s, &c.id)?.iter() {
            let sprig_core::Author::Parent(parent) = &e.author else {
                continue;
            };
            let status = status_word(e.status);
            if e.kind != EntryKind::ParentContribution || wanted.is_some_and(|w| w != status) {
                continue;
            }
            out.push((
                e.created_at.0,
                ReviewItem {
                    id: e.id.to_string(),
                    child_id: c.id.to_string(),
                    child_name: c.name.clone(),
                    parent_id: parent.to_string(),
                    parent_name: roster.parent(parent).map(|p| p.name).unwrap_or_default(),
                    created_at: rfc3339(e.created_at.0),
                    text: e.text.clone(),
                    media: e
                        .media
                        .iter()
                        .map(|m| ContributionMedia {
                            id: m.sha256.to_hex(),
                            kind: m.kind.as_str().to_owned(),
                            mime: m.mime.clone(),
                        })
                        .collect(),
                    status: status.to_owned(),
                },
            ));
        }
    }
    out.sort_by(|(a_at, a), (b_at, b)| (a_at, &a.id).cmp(&(b_at, &b.id)));
    Ok(out.into_iter().map(|(_, item)| item).collect())
}

/// Parents' contributions, oldest first: by default those waiting for review.
#[utoipa::path(get, path = "/api/v1/admin/contributions", tag = "admin", params(ContributionQuery),
    responses(
        (status = 200, body = [ReviewItem]),
        (status = 400, body = ErrorBody, description = "An unknown `status`"),
        (status = 404, body = ErrorBody, description = "Not a signed-in manager of this setting"),
    ))]
pub(crate) async fn contributions(
    m: Manager,
    Params(q): Params<ContributionQuery>,
) -> Result<Json<Vec<ReviewItem>>, ApiError> {
    let wanted = match q.status.as_deref().unwrap_or("pending") {
        "all" => None,
        w @ ("pending" | "approved" | "rejected") => Some(w.to_owned()),
        _ => {
            return Err(ApiError::bad_request(
                "`status` is one of pending, approved, rejected or all.",
            ));
        }
    };
    let (reads, roster) = (m.setting.reads.clone(), m.roster.clone());
    let items = run(&m.setting, move |s| {
        contributions_of(s, &reads, &roster, wanted.as_deref())
    })
    .await?
    .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(items))
}

/// `POST /api/v1/admin/contributions/{id}/reject`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct Rejection {
    /// Why, for the parent: 1 to 2,000 characters. They see it with the outcome.
    reason: String,
}

/// A review's outcome.
#[derive(Serialize, ToSchema)]
pub(crate) struct Reviewed {
    id: String,
    /// `approved` or `rejected`.
    status: String,
}

/// The child whose journal holds the contribution `entry`, if any.
fn contribution_child(
    s: &dyn ServerStore,
    reads: &ReadCache,
    roster: &Roster,
    entry: &EntryId,
) -> Result<Option<ChildId>, DocStoreError> {
    for c in roster.children() {
        if reads
            .entries(s, &c.id)?
            .iter()
            .any(|e| &e.id == entry && e.kind == EntryKind::ParentContribution)
        {
            return Ok(Some(c.id));
        }
    }
    Ok(None)
}

fn rule_err(e: &RuleError) -> ApiError {
    match e {
        RuleError::AlreadyReviewed(_) => ApiError::new(
            StatusCode::CONFLICT,
            "already_reviewed",
            "This contribution has already been reviewed (on a tablet or by another manager). \
             Reload the list.",
        ),
        RuleError::EntryNotFound | RuleError::NotAContribution => ApiError::not_found(),
        other => ApiError::bad_request(other.to_string()),
    }
}

/// Approves or rejects (with `reason`) contribution `id`, written into the child's journal by
/// the server as the manager, audited, and announced to the watching tablets.
async fn review(m: Manager, id: &str, reason: Option<String>) -> Result<Json<Reviewed>, ApiError> {
    let entry = EntryId::parse(id).map_err(|_| ApiError::not_found())?;
    let child = {
        let (reads, roster, entry) = (m.setting.reads.clone(), m.roster.clone(), entry.clone());
        run(&m.setting, move |s| {
            contribution_child(s, &reads, &roster, &entry)
        })
        .await?
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(ApiError::not_found)?
    };
    let (roster, staff, by) = (m.roster.clone(), m.staff.clone(), m.by.clone());
    let status = if reason.is_some() {
        "rejected"
    } else {
        "approved"
    };
    let written = {
        let (child, entry) = (child.clone(), entry.clone());
        run(&m.setting, move |s| -> Result<(), ApiError> {
            let actor = Actor::Staff(staff);
            let at = Timestamp(now_ms());
            edit_journal(s, &child, |j| -> Result<(), ApiError> {
                match &reason {
                    None => j
                        .approve(&roster, &actor, &entry, at)
                        .map_err(|e| rule_err(&e)),
                    Some(reason) => {
                        // Checked first, so a refused rejection writes no reply either. The
                        // reason is a staff reply under it, which its parent sees with the
                        // outcome (as a tablet's rejection writes it).
                        let e = j.entry(&entry).ok_or_else(ApiError::not_found)?;
                        if e.status != EntryStatus::Pending {
                            return Err(rule_err(&RuleError::AlreadyReviewed(e.status)));
                        }
                        j.reply(&roster, &actor, &entry, reason, at)
                            .map_err(|e| rule_err(&e))?;
                        j.reject(&roster, &actor, &entry, at)
                            .map_err(|e| rule_err(&e))
                    }
                }
            })?;
            crate::http::audit(
                s,
                &by.actor,
                None,
                if status == "approved" {
                    "contribution_approve"
                } else {
                    "contribution_reject"
                },
                format!("child={child} entry={entry}"),
            );
            Ok(())
        })
        .await?
    };
    written?;
    m.setting
        .changes
        .announce_written(vec![DocId::Journal(child)]);
    Ok(Json(Reviewed {
        id: entry.to_string(),
        status: status.into(),
    }))
}

/// Approves a parent's contribution: it joins the child's journal, which the parent and the
/// tablets see.
#[utoipa::path(post, path = "/api/v1/admin/contributions/{id}/approve", tag = "admin",
    params(("id" = String, Path, description = "The contribution's id")),
    responses(
        (status = 200, body = Reviewed),
        (status = 404, body = ErrorBody, description = "No such contribution, or not a signed-in manager of this setting"),
        (status = 409, body = ErrorBody, description = "`already_reviewed`"),
    ))]
pub(crate) async fn approve(
    m: Manager,
    Path(id): Path<String>,
) -> Result<Json<Reviewed>, ApiError> {
    review(m, &id, None).await
}

/// Turns a parent's contribution down, with the reason the parent is shown; it never joins the
/// journal.
#[utoipa::path(post, path = "/api/v1/admin/contributions/{id}/reject", tag = "admin",
    params(("id" = String, Path, description = "The contribution's id")),
    request_body = Rejection,
    responses(
        (status = 200, body = Reviewed),
        (status = 400, body = ErrorBody, description = "No reason, or one over 2,000 characters"),
        (status = 404, body = ErrorBody, description = "No such contribution, or not a signed-in manager of this setting"),
        (status = 409, body = ErrorBody, description = "`already_reviewed`"),
    ))]
pub(crate) async fn reject(
    m: Manager,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Rejection>,
) -> Result<Json<Reviewed>, ApiError> {
    let reason = req.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::bad_request(format!(
            "Give the parent a reason of 1 to {MAX_REASON_CHARS} characters."
        )));
    }
    review(m, &id, Some(reason)).await
}
