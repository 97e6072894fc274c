//! The `#[tauri::command(rename_all = "snake_case")]` wrappers: parse the UI's arguments, call `sprig-device`, convert
//! the answer to a DTO. Long operations (enrolment, sync, saving a photo) run on their own
//! thread so the window never waits on them.

// Tauri hands every command its arguments and `State` by value; that is its calling convention.
#![allow(clippy::needless_pass_by_value)]

use sprig_core::{AgeBand, Area, Characteristic, ChildId, EntryId, Sha256, StaffId};
use sprig_device::{Device, Edit, Enrolment, Observation};
use tauri::State;
use tauri::ipc::{InvokeBody, Request, Response};

use crate::dto::{
    AppStatus, Blocked, ChildDto, CoverageDto, DoneReport, EnrolPreviewDto, EntryChange, EntryDto,
    Names, NewObservation, RevisionDto, SessionInfo, StaffTileDto, StagedMedia, SyncStatus,
    coverage_dto, ms,
};
use crate::error::AppError;
use crate::shell::{Shell, Staged, blocked_for};

type Res<T> = Result<T, AppError>;

fn bad(what: &str) -> AppError {
    AppError::new("invalid_input", what)
}

fn parse<T: std::str::FromStr>(s: &str, what: &str) -> Res<T> {
    s.parse().map_err(|_| bad(&format!("{what} is not valid")))
}

/// Runs blocking device work off the async runtime's threads (the device's network calls run
/// their own small runtime, which must not be nested in Tauri's).
async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Res<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await
        .map_err(|_| AppError::new("internal", "the operation stopped unexpectedly; try again"))
}

/// Where the app stands: enrol, lock screen, unlocked, or a full-screen state.
#[tauri::command(rename_all = "snake_case")]
pub fn app_status(shell: State<'_, Shell>) -> AppStatus {
    shell.status()
}

/// Which setting a server belongs to and whether its CA matches the fingerprint.
#[tauri::command(rename_all = "snake_case")]
pub async fn preview_enrolment(server: String, fingerprint: String) -> Res<EnrolPreviewDto> {
    let p = off_thread(move || sprig_device::preview_enrolment(&server, &fingerprint)).await??;
    Ok(EnrolPreviewDto {
        setting_name: p.setting_name,
        presented_fingerprint: p.presented_fingerprint,
        matches: p.matches,
    })
}

/// Enrols this tablet with a one-time code, then syncs once to fetch the staff list.
#[tauri::command(rename_all = "snake_case")]
pub async fn enrol(
    shell: State<'_, Shell>,
    server: String,
    code: String,
    fingerprint: String,
    device_name: String,
) -> Res<AppStatus> {
    shell.close_device();
    let dir = shell.data_dir.clone();
    let enrolment = Enrolment {
        server_url: server,
        code,
        ca_fingerprint: fingerprint,
        device_name: if device_name.trim().is_empty() {
            "Sprig tablet".into()
        } else {
            device_name
        },
    };
    off_thread(move || Device::enrol(&dir, &enrolment)).await??;
    shell.set_blocked(None);
    // The staff list arrives with the first sync; a failure here leaves the lock screen
    // offering a sync.
    let _ = sync_now(shell.clone()).await;
    Ok(shell.status())
}

/// The lock screen's tiles.
#[tauri::command(rename_all = "snake_case")]
pub fn staff_tiles(shell: State<'_, Shell>) -> Res<Vec<StaffTileDto>> {
    match shell.with_device(|d| d.staff_tiles()) {
        Err(e) if e.code == "no_roster" || e.code == "not_set_up" => Ok(Vec::new()),
        other => Ok(other?.into_iter().map(Into::into).collect()),
    }
}

/// Checks a PIN and opens a session.
#[tauri::command(rename_all = "snake_case")]
pub async fn unlock(shell: State<'_, Shell>, staff: String, pin: String) -> Res<SessionInfo> {
    let staff: StaffId = parse(&staff, "the member of staff")?;
    // An async command: argon2id's moment runs on a runtime thread, not the window's.
    let (who, info) = shell.with_device(|d| {
        let who = d.unlock(&staff, &pin)?;
        let me = d.who(&who)?;
        Ok((
            who,
            SessionInfo {
                staff: me.id.to_string(),
                initials: sprig_device::initials(&me.name),
                name: me.name,
                is_manager: me.role == sprig_core::Role::Manager,
            },
        ))
    })?;
    shell.start_session(who, info.clone());
    Ok(info)
}

/// Locks the tablet now.
#[tauri::command(rename_all = "snake_case")]
pub fn lock(shell: State<'_, Shell>) {
    shell.forget_session();
}

/// Counts as activity for the inactivity lock (a tap or a key press in the window).
#[tauri::command(rename_all = "snake_case")]
pub fn touch(shell: State<'_, Shell>) -> Res<()> {
    shell.who().map(|_| ())
}

/// The children, key children first.
#[tauri::command(rename_all = "snake_case")]
pub fn children(shell: State<'_, Shell>) -> Res<Vec<ChildDto>> {
    let who = shell.who()?;
    Ok(shell
        .with_device(|d| d.children(&who))?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// A child's journal, newest first.
#[tauri::command(rename_all = "snake_case")]
pub fn journal(shell: State<'_, Shell>, child: String) -> Res<Vec<EntryDto>> {
    let who = shell.who()?;
    let child: ChildId = parse(&child, "the child")?;
    shell.with_device(|d| {
        let names = Names(d.roster()?);
        Ok(d.journal(&who, &child)?
            .into_iter()
            .map(|i| names.entry(i))
            .collect())
    })
}

/// An entry's corrections, oldest first.
#[tauri::command(rename_all = "snake_case")]
pub fn revisions(shell: State<'_, Shell>, child: String, entry: String) -> Res<Vec<RevisionDto>> {
    let who = shell.who()?;
    let child: ChildId = parse(&child, "the child")?;
    let entry: EntryId = parse(&entry, "the entry")?;
    shell.with_device(|d| {
        let names = Names(d.roster()?);
        Ok(d.revisions(&who, &child, &entry)?
            .into_iter()
            .map(|r| names.revision(r))
            .collect())
    })
}

/// Holds a photo or video in memory for the observation being written. The bytes come as the
/// raw IPC body (never JSON, never a file); header `x-sprig-kind: photo|video`.
#[tauri::command(rename_all = "snake_case")]
pub fn stage_media(shell: State<'_, Shell>, request: Request<'_>) -> Res<StagedMedia> {
    shell.who()?;
    let kind = request
        .headers()
        .get("x-sprig-kind")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("photo")
        .to_owned();
    if kind != "photo" && kind != "video" {
        return Err(bad("the media kind must be photo or video"));
    }
    let InvokeBody::Raw(bytes) = request.body() else {
        return Err(bad("the photo must be sent as bytes"));
    };
    if bytes.is_empty() {
        return Err(bad("the photo is empty"));
    }
    let id = uuid_like();
    let staged = StagedMedia {
        id: id.clone(),
        kind: kind.clone(),
        size: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
    };
    shell
        .staged
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(
            id,
            Staged {
                kind,
                bytes: zeroize::Zeroizing::new(bytes.clone()),
            },
        );
    Ok(staged)
}

fn uuid_like() -> String {
    EntryId::new_random().to_string()
}

/// Drops a staged photo or video (its bytes are zeroed).
#[tauri::command(rename_all = "snake_case")]
pub fn discard_media(shell: State<'_, Shell>, id: String) {
    shell
        .staged
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&id);
}

fn areas(v: &[String]) -> Res<Vec<Area>> {
    v.iter()
        .map(|a| Area::parse_any(a).map_err(|e| bad(&e.to_string())))
        .collect()
}

fn band(v: Option<&String>) -> Res<Option<AgeBand>> {
    v.map(|b| AgeBand::parse(b).map_err(|e| bad(&e.to_string())))
        .transpose()
}

fn coel(v: &[String]) -> Res<Vec<Characteristic>> {
    v.iter()
        .map(|c| Characteristic::parse(c).map_err(|e| bad(&e.to_string())))
        .collect()
}

/// Records an observation (offline is fine). Staged media are consumed.
#[tauri::command(rename_all = "snake_case")]
pub async fn observe(shell: State<'_, Shell>, observation: NewObservation) -> Res<String> {
    let who = shell.who()?;
    let children = observation
        .children
        .iter()
        .map(|c| parse::<ChildId>(c, "a child"))
        .collect::<Res<Vec<_>>>()?;
    let mut obs = Observation {
        children,
        text: observation.text,
        areas: areas(&observation.areas)?,
        band: band(observation.band.as_ref())?,
        characteristics: coel(&observation.coel)?,
        next_steps: observation.next_steps,
        draft: observation.draft,
        ..Observation::default()
    };
    {
        let staged = shell
            .staged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for id in &observation.media {
            let s = staged
                .get(id)
                .ok_or_else(|| bad("a photo was dropped before saving; add it again"))?;
            if s.kind == "video" {
                obs.video_bytes.push(s.bytes.to_vec());
            } else {
                obs.photo_bytes.push(s.bytes.to_vec());
            }
        }
    }
    let dir = shell.data_dir.clone();
    let clock = shell.clock.clone();
    // The photo pipeline takes a few hundred ms for 12 MP: its own thread and connection.
    let result = off_thread(move || {
        // `who` came from this store's unlock; it is valid for any connection to it.
        let mut d = Device::open_with_clock(&dir, clock)?;
        let out = d.observe(&who, &obs);
        // The originals (with their EXIF and GPS) do not outlive the save.
        for b in obs.photo_bytes.iter_mut().chain(obs.video_bytes.iter_mut()) {
            zeroize::Zeroize::zeroize(b);
        }
        out
    })
    .await?;
    let id = result.map_err(|e| shell.note(e))?;
    {
        let mut staged = shell
            .staged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for m in &observation.media {
            staged.remove(m);
        }
    }
    Ok(id.to_string())
}

/// Publishes a draft.
#[tauri::command(rename_all = "snake_case")]
pub fn publish(shell: State<'_, Shell>, entry: String) -> Res<()> {
    let who = shell.who()?;
    let entry: EntryId = parse(&entry, "the entry")?;
    shell.with_device(|d| d.publish(&who, &entry))
}

/// Corrects an observation (a new revision).
#[tauri::command(rename_all = "snake_case")]
pub fn edit(shell: State<'_, Shell>, entry: String, change: EntryChange) -> Res<()> {
    let who = shell.who()?;
    let entry: EntryId = parse(&entry, "the entry")?;
    let e = Edit {
        text: Some(change.text),
        next_steps: Some(change.next_steps),
        areas: Some(areas(&change.areas)?),
        band: Some(band(change.band.as_ref())?),
        characteristics: Some(coel(&change.coel)?),
    };
    shell.with_device(|d| d.edit(&who, &entry, &e))
}

/// Replies under an entry, in `child`'s journal.
#[tauri::command(rename_all = "snake_case")]
pub fn reply(shell: State<'_, Shell>, entry: String, child: String, text: String) -> Res<String> {
    let who = shell.who()?;
    let entry: EntryId = parse(&entry, "the entry")?;
    let child: ChildId = parse(&child, "the child")?;
    Ok(shell
        .with_device(|d| d.reply(&who, &entry, Some(&child), &text))?
        .to_string())
}

/// Parent contributions awaiting review.
#[tauri::command(rename_all = "snake_case")]
pub fn pending(shell: State<'_, Shell>) -> Res<Vec<EntryDto>> {
    let who = shell.who()?;
    shell.with_device(|d| {
        let names = Names(d.roster()?);
        Ok(d.pending(&who)?
            .into_iter()
            .map(|i| names.entry(i))
            .collect())
    })
}

/// Approves a contribution into the journal.
#[tauri::command(rename_all = "snake_case")]
pub fn approve(shell: State<'_, Shell>, entry: String) -> Res<()> {
    let who = shell.who()?;
    let entry: EntryId = parse(&entry, "the entry")?;
    shell.with_device(|d| d.approve(&who, &entry))
}

/// Turns a contribution down with a reason the parent sees.
#[tauri::command(rename_all = "snake_case")]
pub fn reject(shell: State<'_, Shell>, entry: String, reason: String) -> Res<()> {
    let who = shell.who()?;
    let entry: EntryId = parse(&entry, "the entry")?;
    shell.with_device(|d| d.reject(&who, &entry, &reason))
}

/// A manager's coverage over `days` days.
#[tauri::command(rename_all = "snake_case")]
pub fn coverage(shell: State<'_, Shell>, days: u32) -> Res<CoverageDto> {
    let who = shell.who()?;
    shell.with_device(|d| {
        let names = Names(d.roster()?);
        Ok(coverage_dto(d.coverage(&who, days)?, &names))
    })
}

/// A photo's thumbnail bytes (empty when the tablet holds none).
#[tauri::command(rename_all = "snake_case")]
pub fn thumbnail(shell: State<'_, Shell>, sha256: String) -> Res<Response> {
    let who = shell.who()?;
    let sha = Sha256::from_hex(&sha256).map_err(|_| bad("the photo id is not valid"))?;
    let bytes = shell.with_device(|d| d.thumbnail(&who, &sha))?;
    Ok(Response::new(bytes.unwrap_or_default()))
}

/// A photo or video's bytes, from the tablet or streamed from the server into memory.
#[tauri::command(rename_all = "snake_case")]
pub async fn media(shell: State<'_, Shell>, sha256: String) -> Res<Response> {
    let who = shell.who()?;
    let sha = Sha256::from_hex(&sha256).map_err(|_| bad("the photo id is not valid"))?;
    let dir = shell.data_dir.clone();
    let clock = shell.clock.clone();
    let bytes = off_thread(move || {
        let d = Device::open_with_clock(&dir, clock)?;
        d.media_bytes(&who, &sha)
    })
    .await?
    .map_err(|e| shell.note(e))?;
    Ok(Response::new(bytes))
}

/// Sync progress and the last outcome.
#[tauri::command(rename_all = "snake_case")]
pub fn sync_status(shell: State<'_, Shell>) -> SyncStatus {
    let mut s = shell
        .sync
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let Ok(status) = shell.with_device(|d| d.status()) {
        s.pending_media = u32::try_from(status.pending_media).unwrap_or(u32::MAX);
        s.unsynced_docs = u32::try_from(status.unsynced_docs).unwrap_or(u32::MAX);
        s.last_sync = status.last_sync.map(ms);
    }
    s.syncing = shell.syncing.load(std::sync::atomic::Ordering::SeqCst);
    s
}

/// Syncs now (the UI calls this every minute, when the network returns, and on "Sync"). At
/// most one runs at a time; a second call returns the running one's status.
#[tauri::command(rename_all = "snake_case")]
pub async fn sync_now(shell: State<'_, Shell>) -> Res<SyncStatus> {
    use std::sync::atomic::Ordering;
    if shell.syncing.swap(true, Ordering::SeqCst) {
        return Ok(sync_status(shell));
    }
    let before = shell.with_device(|d| d.status()).ok();
    {
        let mut s = shell
            .sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.pending_at_start = before
            .as_ref()
            .map_or(0, |b| u32::try_from(b.pending_media).unwrap_or(u32::MAX));
    }
    let dir = shell.data_dir.clone();
    let clock = shell.clock.clone();
    // Its own connection to the store: the window keeps reading and writing meanwhile.
    let result = off_thread(move || {
        let mut d = Device::open_with_clock(&dir, clock)?;
        d.sync()
    })
    .await;
    shell.syncing.store(false, Ordering::SeqCst);
    let result = result?;
    {
        let mut s = shell
            .sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &result {
            Ok(_) => {
                s.online = true;
                s.last_error = None;
                s.last_error_message = None;
            }
            Err(e) => {
                s.online = !matches!(e.code().as_str(), "network");
                s.last_error = Some(e.code());
                s.last_error_message = Some(e.to_string());
            }
        }
    }
    match result {
        Ok(report) if report.wiped => {
            shell.close_device();
            shell.forget_session();
            shell.set_blocked(Some(Blocked {
                kind: "wiped".into(),
                detail: if report.retired {
                    "retired".into()
                } else {
                    "wiped".into()
                },
                can_sync: false,
                can_enrol: true,
            }));
        }
        Ok(_) => {
            // A sync that completed lifts a lease lock-out or a quarantine that was released.
            if shell
                .blocked()
                .is_some_and(|b| b.kind == "lease_expired" || b.kind == "quarantined")
            {
                shell.set_blocked(None);
            }
        }
        Err(e) => {
            if let Some(b) = blocked_for(&e) {
                if b.kind == "wiped" {
                    shell.close_device();
                }
                shell.forget_session();
                shell.set_blocked(Some(b));
            }
        }
    }
    Ok(sync_status(shell))
}

/// Waits up to `timeout_secs` (1–60) for the server to say that the setting's documents
/// changed (another tablet synced, a manager changed the roster, a wipe is waiting): `true`
/// means "sync now". The UI calls it in a loop while the tablet is enrolled and online, so
/// what another key worker records shows up within a second or so instead of at the next
/// minute's sync. The watch connection stays open between calls; a network error ends it
/// (the UI waits a little and calls again, which opens a new one). The call that opens a
/// connection answers `true` at once: changes made while none was open were not announced.
#[tauri::command(rename_all = "snake_case")]
pub async fn wait_for_changes(shell: State<'_, Shell>, timeout_secs: u32) -> Res<bool> {
    let timeout = std::time::Duration::from_secs(u64::from(timeout_secs.clamp(1, 60)));
    let watch = shell.take_watch();
    let dir = shell.data_dir.clone();
    let clock = shell.clock.clone();
    // Off the window's threads, with a store connection of its own for the moment it opens:
    // the wait holds nothing the other commands need.
    let (watch, outcome) = off_thread(move || {
        let Some(mut watch) = watch else {
            // A new connection: whatever changed while none was open was not announced to this
            // tablet, so "sync now" to catch up, then wait on it from the next call.
            return match Device::open_with_clock(&dir, clock).and_then(|d| d.watch()) {
                Ok(w) => (Some(w), Ok(Some(Vec::new()))),
                Err(e) => (None, Err(e)),
            };
        };
        let outcome = watch.next(timeout);
        (outcome.is_ok().then_some(watch), outcome)
    })
    .await?;
    if let Some(w) = watch {
        shell.keep_watch(w);
    }
    match outcome {
        Ok(changed) => Ok(changed.is_some()),
        Err(e) => Err(shell.note(e)),
    }
}

/// "Done": syncs first when something is waiting and the network is there, then locks; says
/// what is still only on this tablet.
#[tauri::command(rename_all = "snake_case")]
pub async fn done(shell: State<'_, Shell>) -> Res<DoneReport> {
    let before = shell.with_device(|d| d.status())?;
    let mut synced = false;
    let mut sync_error = None;
    if before.pending_media > 0 || before.unsynced_docs > 0 {
        let s = sync_now(shell.clone()).await?;
        synced = s.last_error.is_none();
        sync_error = s.last_error;
    }
    shell.forget_session();
    let after = shell.with_device(|d| d.status()).ok();
    Ok(DoneReport {
        synced,
        pending_media: after
            .as_ref()
            .map_or(0, |a| u32::try_from(a.pending_media).unwrap_or(u32::MAX)),
        unsynced_docs: after
            .as_ref()
            .map_or(0, |a| u32::try_from(a.unsynced_docs).unwrap_or(u32::MAX)),
        sync_error,
    })
}
