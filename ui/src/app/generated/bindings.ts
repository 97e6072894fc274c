// Generated from src-tauri (dto.rs, error.rs, the command table in lib.rs) by
// `SPRIG_WRITE_BINDINGS=1 cargo test -p sprig-app bindings`. Do not edit.

export type AppError = { 
/**
 * Stable code, e.g. `wrong_pin`, `consent_missing`, `device_revoked`, `auto_locked`.
 */
code: string, 
/**
 * A sentence a key worker can act on.
 */
message: string, 
/**
 * Seconds to wait (PIN back-off), when the code is `pin_throttled`.
 */
wait_secs: number | null, 
/**
 * The child concerned (consent refusal), when known.
 */
child: string | null, };

export type Phase = "enrol" | "locked" | "unlocked" | "blocked";

export type Blocked = { 
/**
 * `revoked`, `wiped`, `quarantined` or `lease_expired`.
 */
kind: string, 
/**
 * The device's own sentence (the UI has its own per kind; this is the detail).
 */
detail: string, 
/**
 * Whether a sync might lift it (lease expired).
 */
can_sync: boolean, 
/**
 * Whether enrolling again is the way out (wiped).
 */
can_enrol: boolean, };

export type UiPolicies = { 
/**
 * Lock after this much inactivity.
 */
inactivity_lock_secs: number, 
/**
 * Mark children not observed for this many days.
 */
not_observed_days: number, };

export type SessionInfo = { 
/**
 * Their staff id.
 */
staff: string, 
/**
 * Their name.
 */
name: string, 
/**
 * Their initials.
 */
initials: string, 
/**
 * Managers also see coverage.
 */
is_manager: boolean, };

export type EnrolLink = { 
/**
 * Server URL.
 */
server: string, 
/**
 * One-time code.
 */
code: string, 
/**
 * CA fingerprint.
 */
fingerprint: string, };

export type AppStatus = { 
/**
 * Which screen family.
 */
phase: Phase, 
/**
 * Set in [`Phase::Blocked`].
 */
blocked: Blocked | null, 
/**
 * The setting's name, once known.
 */
setting_name: string | null, 
/**
 * This tablet's id.
 */
device_id: string | null, 
/**
 * Who is unlocked.
 */
session: SessionInfo | null, 
/**
 * The policies in force.
 */
policies: UiPolicies, 
/**
 * Why unlocking is refused until a sync (`pin_failures`, `lease_expired`, `clock_behind`).
 */
locked_until_sync: string | null, 
/**
 * Wrong PINs still allowed before the tablet locks until it syncs.
 */
pin_attempts_left: number | null, 
/**
 * A `sprig://enrol?...` link the app was opened with, parsed.
 */
enrol_link: EnrolLink | null, };

export type EnrolPreviewDto = { 
/**
 * The setting's name (only when the fingerprint matches).
 */
setting_name: string | null, 
/**
 * The fingerprint the server presented.
 */
presented_fingerprint: string | null, 
/**
 * It matches the one typed or scanned.
 */
matches: boolean, };

export type StaffTileDto = { 
/**
 * Staff id.
 */
id: string, 
/**
 * Name.
 */
name: string, 
/**
 * Initials.
 */
initials: string, 
/**
 * `practitioner` or `manager`.
 */
role: string, };

export type ChildDto = { 
/**
 * Child id.
 */
id: string, 
/**
 * Name.
 */
name: string, 
/**
 * Initials for the avatar.
 */
initials: string, 
/**
 * Room name.
 */
room: string | null, 
/**
 * Key worker's name.
 */
key_worker_name: string | null, 
/**
 * The unlocked member of staff is their key worker.
 */
is_key_child: boolean, 
/**
 * `yes`, `no` or `not-asked`.
 */
photo_consent: string, 
/**
 * Newest observation (ms).
 */
last_observed_at: number | null, 
/**
 * Not observed within the policy's days.
 */
not_observed: boolean, 
/**
 * Parent contributions awaiting review.
 */
pending: number, };

export type MediaDto = { 
/**
 * SHA-256 hex.
 */
sha256: string, 
/**
 * `photo` or `video`.
 */
kind: string, 
/**
 * MIME type.
 */
mime: string, 
/**
 * Width in pixels (0 unknown).
 */
width: number, 
/**
 * Height in pixels (0 unknown).
 */
height: number, 
/**
 * `captured`, `uploaded`, `purged` or `remote`.
 */
state: string, };

export type ReplyDto = { 
/**
 * Reply id.
 */
id: string, 
/**
 * `staff` or `parent`.
 */
author_kind: string, 
/**
 * Who (a name when known).
 */
author_name: string, 
/**
 * When (ms).
 */
created_at: number, 
/**
 * Text.
 */
text: string, };

export type EntryDto = { 
/**
 * Entry id.
 */
id: string, 
/**
 * The child whose copy this is.
 */
child: string, 
/**
 * `observation` or `parent-contribution`.
 */
kind: string, 
/**
 * `draft`, `published`, `pending`, `rejected`.
 */
status: string, 
/**
 * Author's name.
 */
author_name: string, 
/**
 * `staff` or `parent`.
 */
author_kind: string, 
/**
 * When (ms).
 */
created_at: number, 
/**
 * Last edit (ms).
 */
edited_at: number | null, 
/**
 * Text (latest revision).
 */
text: string, 
/**
 * Next steps.
 */
next_steps: string, 
/**
 * Area text forms.
 */
areas: Array<string>, 
/**
 * Age band text form.
 */
band: string | null, 
/**
 * Characteristics' text forms.
 */
coel: Array<string>, 
/**
 * Other children of a group observation (names; staff only).
 */
with_children: Array<string>, 
/**
 * Media.
 */
media: Array<MediaDto>, 
/**
 * Replies, oldest first.
 */
replies: Array<ReplyDto>, };

export type RevisionDto = { 
/**
 * Who made it.
 */
by_name: string, 
/**
 * When (ms).
 */
at: number, 
/**
 * The text as corrected.
 */
text: string, 
/**
 * The next steps as corrected.
 */
next_steps: string, };

export type ChildCountDto = { 
/**
 * Child id.
 */
id: string, 
/**
 * Name.
 */
name: string, 
/**
 * Key worker's name.
 */
key_worker_name: string, 
/**
 * Observations in the period.
 */
observations: number, 
/**
 * Newest observation ever (ms).
 */
last_observed_at: number | null, };

export type StaffCountDto = { 
/**
 * Staff id.
 */
id: string, 
/**
 * Name.
 */
name: string, 
/**
 * Observations recorded in the period.
 */
observations: number, 
/**
 * Key children.
 */
key_children: number, };

export type AreaCountDto = { 
/**
 * Text form.
 */
area: string, 
/**
 * Short form (CL, PD…).
 */
short: string, 
/**
 * Observations tagged with it.
 */
observations: number, };

export type CoverageDto = { 
/**
 * Period in days.
 */
days: number, 
/**
 * Per child, fewest first.
 */
per_child: Array<ChildCountDto>, 
/**
 * Per member of staff.
 */
per_key_worker: Array<StaffCountDto>, 
/**
 * Per area, the seven in order.
 */
per_area: Array<AreaCountDto>, 
/**
 * Not observed within the period.
 */
not_observed: Array<ChildCountDto>, 
/**
 * This tablet's pending uploads.
 */
pending_uploads: number, 
/**
 * Documents not yet acknowledged by the server.
 */
unsynced_docs: number, };

export type SyncStatus = { 
/**
 * A sync is running.
 */
syncing: boolean, 
/**
 * Photos and videos waiting for upload.
 */
pending_media: number, 
/**
 * Of those, how many were pending when the running sync started (for the progress bar).
 */
pending_at_start: number, 
/**
 * Documents changed here and not yet acknowledged.
 */
unsynced_docs: number, 
/**
 * When the last sync completed (ms).
 */
last_sync: number | null, 
/**
 * The last sync attempt reached the server.
 */
online: boolean, 
/**
 * The last sync's error code, if it failed.
 */
last_error: string | null, 
/**
 * The last sync's error sentence.
 */
last_error_message: string | null, };

export type DoneReport = { 
/**
 * It synced before locking.
 */
synced: boolean, 
/**
 * Photos and videos still only on this tablet.
 */
pending_media: number, 
/**
 * Documents still to send.
 */
unsynced_docs: number, 
/**
 * Why the sync did not happen or failed, if so.
 */
sync_error: string | null, };

export type StagedMedia = { 
/**
 * Handle for `observe` and `discard_media`.
 */
id: string, 
/**
 * `photo` or `video`.
 */
kind: string, 
/**
 * Size in bytes.
 */
size: number, };

export type NewObservation = { 
/**
 * Child ids.
 */
children: Array<string>, 
/**
 * Text.
 */
text: string, 
/**
 * Area text or short forms.
 */
areas: Array<string>, 
/**
 * Age band text form.
 */
band: string | null, 
/**
 * Characteristics' text forms.
 */
coel: Array<string>, 
/**
 * Next steps.
 */
next_steps: string, 
/**
 * Staged media handles, in order.
 */
media: Array<string>, 
/**
 * Save as a draft.
 */
draft: boolean, };

export type EntryChange = { 
/**
 * Text.
 */
text: string, 
/**
 * Next steps.
 */
next_steps: string, 
/**
 * Areas.
 */
areas: Array<string>, 
/**
 * Age band.
 */
band: string | null, 
/**
 * Characteristics.
 */
coel: Array<string>, };

/** Every command: its arguments (snake_case, as sent) and its result. */
export type Commands = {
  app_status: { args: Record<string, never>; returns: AppStatus };
  preview_enrolment: { args: { server: string; fingerprint: string }; returns: EnrolPreviewDto };
  enrol: { args: { server: string; code: string; fingerprint: string; device_name: string }; returns: AppStatus };
  staff_tiles: { args: Record<string, never>; returns: Array<StaffTileDto> };
  unlock: { args: { staff: string; pin: string }; returns: SessionInfo };
  lock: { args: Record<string, never>; returns: void };
  touch: { args: Record<string, never>; returns: void };
  children: { args: Record<string, never>; returns: Array<ChildDto> };
  journal: { args: { child: string }; returns: Array<EntryDto> };
  revisions: { args: { child: string; entry: string }; returns: Array<RevisionDto> };
  stage_media: { args: { body: Uint8Array }; returns: StagedMedia };
  discard_media: { args: { id: string }; returns: void };
  observe: { args: { observation: NewObservation }; returns: string };
  publish: { args: { entry: string }; returns: void };
  edit: { args: { entry: string; change: EntryChange }; returns: void };
  reply: { args: { entry: string; child: string; text: string }; returns: string };
  pending: { args: Record<string, never>; returns: Array<EntryDto> };
  approve: { args: { entry: string }; returns: void };
  reject: { args: { entry: string; reason: string }; returns: void };
  coverage: { args: { days: number }; returns: CoverageDto };
  thumbnail: { args: { sha256: string }; returns: ArrayBuffer };
  media: { args: { sha256: string }; returns: ArrayBuffer };
  sync_status: { args: Record<string, never>; returns: SyncStatus };
  sync_now: { args: Record<string, never>; returns: SyncStatus };
  done: { args: Record<string, never>; returns: DoneReport };
};
