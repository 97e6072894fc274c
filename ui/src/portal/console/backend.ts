// What the manager console asks of the server: the `/api/v1/admin/` endpoints. `HttpConsole`
// calls them; `MemoryConsole` serves component tests. Refusals are `PortalError`s carrying the
// server's `{code, message}`.
import type {
  AdminChild,
  AdminContribution,
  AdminDevice,
  AdminParent,
  AdminPolicy,
  AdminRoom,
  AdminStaff,
  AuditEvent,
  AuditFilter,
  ChildChange,
  ContributionDecision,
  CustodyEvent,
  Coverage,
  DeviceAction,
  DeviceActionAnswer,
  EnrolCode,
  Invitation,
  NewChild,
  NewParent,
  NewStaff,
  StaffChange,
} from './types';

export interface ConsoleBackend {
  devices(): Promise<AdminDevice[]>;
  enrolCode(deviceName: string): Promise<EnrolCode>;
  /** Revoke, wipe and retire need `totp`, a fresh code from the authenticator app. */
  deviceAction(id: string, action: DeviceAction, totp?: string): Promise<DeviceActionAnswer>;
  permitOffsite(id: string, until: string): Promise<void>;
  /** Records that a tablet left the locked cupboard or was put back, for its custody log. */
  custody(id: string, event: CustodyEvent, note?: string): Promise<void>;
  children(): Promise<AdminChild[]>;
  addChild(child: NewChild): Promise<void>;
  changeChild(id: string, change: ChildChange): Promise<void>;
  staff(): Promise<AdminStaff[]>;
  addStaff(staff: NewStaff): Promise<void>;
  changeStaff(id: string, change: StaffChange): Promise<void>;
  parents(): Promise<AdminParent[]>;
  /** Adds the parent and returns their one-time invitation link. */
  invite(parent: NewParent): Promise<Invitation>;
  /** A new invitation link for a parent who has not set a password yet; earlier ones end. */
  resendInvite(id: string): Promise<Invitation>;
  link(parent: string, child: string): Promise<void>;
  /** Removing a link needs a fresh code from the authenticator app. */
  unlink(parent: string, child: string, totp: string): Promise<void>;
  rooms(): Promise<AdminRoom[]>;
  coverage(days: number): Promise<Coverage>;
  pendingContributions(): Promise<AdminContribution[]>;
  approve(id: string): Promise<ContributionDecision>;
  reject(id: string, reason: string): Promise<ContributionDecision>;
  audit(filter: AuditFilter): Promise<AuditEvent[]>;
  /** The address of the audit log's CSV export with the same filter. */
  auditCsvUrl(filter: AuditFilter): string;
  policy(): Promise<AdminPolicy>;
  setPolicy(policy: AdminPolicy): Promise<AdminPolicy>;
}

/** The filter as a query string (`?device=…&since=…`), empty fields left out. */
export function auditQuery(filter: AuditFilter): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filter) as [string, string | undefined][]) {
    if (v) q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
