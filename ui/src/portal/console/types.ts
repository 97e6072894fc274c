// The manager console's requests and answers, written by hand from the helpers' contract
// (/work/console-contract.md) until the OpenAPI document has the admin endpoints; then these
// give way to the generated types in ../generated/api.ts. Times are RFC 3339 strings.

/** `POST /api/v1/session`: the answer, with a TOTP set-up for a manager's first sign-in. */
export interface SignInAnswer {
  mfa_required: boolean;
  /** `otpauth://totp/…`: only while the manager has no second factor yet. */
  totp_setup?: string | null;
  /** The QR code of `totp_setup`, an SVG document. */
  totp_qr_svg?: string | null;
  /** The secret, base32, for typing into the app. */
  totp_secret?: string | null;
}

/** `POST /api/v1/session/mfa`: `recovery_codes` once, when the first code activated TOTP. */
export interface MfaAnswer {
  mfa_required?: boolean;
  recovery_codes?: string[] | null;
}

/** Who is signed in: `GET /api/v1/me` adds `role` to the portal's `Me`. */
export type Role = 'parent' | 'manager';

export type DeviceStatus =
  | 'active'
  | 'locked'
  | 'quarantined'
  | 'revoked'
  | 'wipe-pending'
  | 'wiped'
  | 'retire-pending'
  | 'retired';

/** `GET /api/v1/admin/devices`: one row of the register. */
export interface AdminDevice {
  id: string;
  name: string;
  status: DeviceStatus;
  locked: boolean;
  last_seen: string | null;
  last_sync: string | null;
  app_version: string | null;
  unsynced_docs: number;
  unsynced_media: number;
  lease_expires_at: string | null;
  /** Not seen for 24 hours while active. */
  missing: boolean;
  off_site_until: string | null;
}

/** `POST /api/v1/admin/enrol-codes`. */
export interface EnrolCodeRequest {
  device_name: string;
}

export interface EnrolCode {
  code: string;
  url: string;
  ca_fingerprint: string;
  /** The QR code of the enrolment, an SVG document. */
  qr_svg: string;
  expires_at: string;
}

export type DeviceAction = 'revoke' | 'wipe' | 'retire' | 'release';

/** `POST /api/v1/admin/devices/{id}/{action}`: `totp` for revoke, wipe and retire. */
export interface DeviceActionRequest {
  totp?: string;
}

export interface DeviceActionAnswer {
  id: string;
  status: DeviceStatus;
  from: DeviceStatus;
}

/** `POST /api/v1/admin/devices/{id}/custody`: out of the locked cupboard, or back in it. */
export type CustodyEvent = 'checked_out' | 'returned';

/** `POST /api/v1/admin/devices/{id}/offsite`. */
export interface OffsiteRequest {
  until: string;
}

export type PhotoConsent = 'yes' | 'no' | 'unanswered';

/** `GET /api/v1/admin/children`. */
export interface AdminChild {
  id: string;
  name: string;
  room: string | null;
  /** The key worker's staff id. */
  key_worker: string | null;
  date_of_birth: string | null;
  photo_consent: PhotoConsent;
  status: 'attending' | 'left';
  /** The linked parents' ids. */
  parents: string[];
}

/** `POST /api/v1/admin/children`. */
export interface NewChild {
  name: string;
  room?: string;
  key_worker?: string;
  date_of_birth?: string;
  photo_consent?: 'yes' | 'no';
}

/** `PATCH /api/v1/admin/children/{id}`: only the fields given change. */
export interface ChildChange {
  key_worker?: string;
  room?: string;
  date_of_birth?: string;
  photo_consent?: 'yes' | 'no';
  /** `YYYY-MM-DD`. */
  leaving?: string;
}

export type StaffRole = 'manager' | 'practitioner';

/** `GET /api/v1/admin/staff`. */
export interface AdminStaff {
  id: string;
  name: string;
  role: StaffRole;
  active: boolean;
  email: string | null;
}

/** `POST /api/v1/admin/staff`. */
export interface NewStaff {
  name: string;
  role: StaffRole;
  pin: string;
  email?: string;
  password?: string;
}

/** `PATCH /api/v1/admin/staff/{id}`. */
export interface StaffChange {
  role?: StaffRole;
  deactivate?: boolean;
  pin?: string;
}

/** `GET /api/v1/admin/parents`. */
export interface AdminParent {
  id: string;
  name: string;
  email: string;
  children: string[];
  invited: boolean;
  has_password: boolean;
}

/** `POST /api/v1/admin/parents`: an invitation, as `sprig-server parent invite`. */
export interface NewParent {
  name: string;
  email: string;
  children: string[];
}

/** `POST /api/v1/admin/parents` and `…/parents/{id}/invitation`: the one-time link, which
 * the manager gives the parent (it works once, until `expires_at`). */
export interface Invitation {
  id: string;
  link: string;
  expires_at: string;
}

/** `POST /api/v1/admin/parents/{id}/links`. */
export interface LinkRequest {
  child_id: string;
}

/** `DELETE /api/v1/admin/parents/{id}/links/{child_id}`. */
export interface UnlinkRequest {
  totp: string;
}

/** `GET /api/v1/admin/rooms`. */
export interface AdminRoom {
  id: string;
  name: string;
}

/** `GET /api/v1/admin/coverage?days=N`. */
export interface Coverage {
  days: number;
  per_child: { child_id: string; name: string; count: number; last_observed_at: string | null }[];
  per_key_worker: { staff_id: string; name: string; count: number }[];
  per_area: { area: string; count: number }[];
  per_day: { date: string; count: number }[];
  /** `days` is null for a child never observed. */
  not_observed: { child_id: string; name: string; days: number | null }[];
  waiting_review: number;
  /** Observations corrected in the period, newest first. */
  recent_edits: { entry_id: string; children: string[]; author: string; edited_at: string; text: string }[];
}

/** `GET /api/v1/admin/contributions?status=pending`. */
export interface AdminContribution {
  id: string;
  child_id: string;
  child_name: string;
  parent_id: string;
  parent_name: string;
  created_at: string;
  text: string;
  media: { id: string; kind: 'photo' | 'video'; mime: string }[];
  status: 'pending' | 'approved' | 'rejected';
}

/** `POST /api/v1/admin/contributions/{id}/reject`. */
export interface RejectRequest {
  reason: string;
}

export interface ContributionDecision {
  id: string;
  status: 'approved' | 'rejected';
}

/** `GET /api/v1/admin/audit`: the filter (all optional; `since` RFC 3339). */
export interface AuditFilter {
  device?: string;
  staff?: string;
  child?: string;
  action?: string;
  since?: string;
}

export interface AuditEvent {
  at: string;
  actor: string;
  client: string | null;
  device: string | null;
  action: string;
  detail: string;
}

/** `GET/PUT /api/v1/admin/policy`: the device policy (`policy.rs`) and the setting's policies. */
export interface AdminPolicy {
  lock_after_secs: number;
  wipe_after_secs: number;
  max_pin_failures: number;
  inactivity_lock_secs: number;
  /** Networks device sync is allowed from (`192.168.1.0/24`); empty allows any. */
  allow_networks: string[];
  not_observed_days: number;
  /** Staff observations wait for a manager's review before parents see them. */
  review_gate: boolean;
  agreement_text: string;
  agreement_version: string;
}

/** `GET /api/v1/me` with the contract's `role` (absent from servers before the console). */
export type MeWithRole = import('../generated/api').Me & { role?: Role };
