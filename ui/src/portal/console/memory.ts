// The console's in-memory backend for component tests: it answers as the server does where
// the screens depend on it (fresh codes for revoke/wipe/retire/unlink, status changes, a reason
// to reject), and records every call. Nothing here is a second implementation for production.
import { PortalError } from '../backend/backend';
import { type ConsoleBackend, auditQuery } from './backend';
import type * as T from './types';

export interface ConsoleSeed {
  devices: T.AdminDevice[];
  children: T.AdminChild[];
  staff: T.AdminStaff[];
  parents: T.AdminParent[];
  rooms: T.AdminRoom[];
  /** T.Coverage answers by period (7, 30, 90). */
  coverage: Record<number, T.Coverage>;
  contributions: T.AdminContribution[];
  /** Staff observations the review gate holds back. */
  reviews?: T.AwaitingReview[];
  audit: T.AuditEvent[];
  policy: T.AdminPolicy;
  /** What the next enrolment code request answers (its `expires_at` as given). */
  enrolCode: T.EnrolCode;
}

const FRESH: T.DeviceAction[] = ['revoke', 'wipe', 'retire'];
const NEXT: Record<T.DeviceAction, T.DeviceStatus> = {
  revoke: 'revoked',
  wipe: 'wipe-pending',
  retire: 'retire-pending',
  release: 'active',
};

/** What the server would receive: a request body as JSON makes it (no live state proxies). */
const wire = <T>(body: T): T => JSON.parse(JSON.stringify(body)) as T;

const notFound = () => new PortalError(404, 'not_found', 'That is no longer in the register. Reload the page.');

export class MemoryConsole implements ConsoleBackend {
  calls: string[] = [];
  private invitations = 0;
  seed: ConsoleSeed;
  /** The code the manager's authenticator app shows now. */
  totpCode: string;
  /** The server's clock (tests set the console's clock here too, so both agree). */
  now: () => number = () => Date.now();

  constructor(seed: ConsoleSeed, totpCode: string) {
    this.seed = structuredClone(seed);
    this.totpCode = totpCode;
  }

  private fresh(totp: string | undefined) {
    if (totp?.replace(/\s/g, '') !== this.totpCode) {
      throw new PortalError(403, 'fresh_code_required', 'Enter a current code from your authenticator app to confirm this.');
    }
  }

  /** A tablet enrols with the last code given out, as `sprig-device enrol` would. */
  enrolTablet(id: string) {
    const asked = this.calls.filter((c) => c.startsWith('enrolCode ')).at(-1);
    const name = asked?.slice('enrolCode '.length) ?? id;
    this.seed.devices.push({
      id,
      name,
      status: 'active',
      locked: false,
      last_seen: new Date().toISOString(),
      last_sync: null,
      app_version: '0.1.0',
      unsynced_docs: 0,
      unsynced_media: 0,
      lease_expires_at: null,
      missing: false,
      off_site_until: null,
    });
  }

  async devices() {
    return structuredClone(this.seed.devices);
  }
  async enrolCode(deviceName: string) {
    this.calls.push(`enrolCode ${deviceName}`);
    if (!deviceName.trim()) throw new PortalError(400, 'bad_request', 'Give the tablet a name, such as “Acorns room tablet”.');
    return structuredClone(this.seed.enrolCode);
  }
  async deviceAction(id: string, action: T.DeviceAction, totp?: string) {
    this.calls.push(`${action} ${id}${totp ? ` ${totp}` : ''}`);
    const d = this.seed.devices.find((d) => d.id === id);
    if (!d) throw notFound();
    if (FRESH.includes(action)) this.fresh(totp);
    const from = d.status;
    d.status = NEXT[action];
    return { id, status: d.status, from };
  }
  async permitOffsite(id: string, until: string) {
    this.calls.push(`offsite ${id} ${until}`);
    const d = this.seed.devices.find((d) => d.id === id);
    if (!d) throw notFound();
    if (Number.isNaN(Date.parse(until)) || Date.parse(until) <= this.now()) {
      throw new PortalError(400, 'bad_request', 'Choose a time in the future for the permission to end.');
    }
    d.off_site_until = until;
  }
  async custody(id: string, event: T.CustodyEvent, note?: string) {
    this.calls.push(`custody ${id} ${event}${note ? ` ${note}` : ''}`);
    if (!this.seed.devices.some((d) => d.id === id)) throw notFound();
  }
  async reviews() {
    return structuredClone(this.seed.reviews ?? []);
  }
  async review(entry: string) {
    this.calls.push(`review ${entry}`);
    const before = this.seed.reviews?.length ?? 0;
    this.seed.reviews = (this.seed.reviews ?? []).filter((r) => r.entry_id !== entry);
    if (this.seed.reviews.length === before) throw notFound();
  }
  async children() {
    return structuredClone(this.seed.children);
  }
  async addChild(child: T.NewChild) {
    this.calls.push(`addChild ${child.name}`);
    this.seed.children.push({
      id: `c${this.seed.children.length + 1}`,
      name: child.name,
      room: child.room ?? null,
      key_worker: child.key_worker ?? null,
      date_of_birth: child.date_of_birth ?? null,
      photo_consent: child.photo_consent ?? 'unanswered',
      status: 'attending',
      parents: [],
    });
  }
  async changeChild(id: string, change: T.ChildChange) {
    this.calls.push(`changeChild ${id} ${JSON.stringify(change)}`);
    const c = this.seed.children.find((c) => c.id === id);
    if (!c) throw notFound();
    if (change.key_worker !== undefined) c.key_worker = change.key_worker;
    if (change.room !== undefined) c.room = change.room;
    if (change.date_of_birth !== undefined) c.date_of_birth = change.date_of_birth;
    if (change.photo_consent !== undefined) c.photo_consent = change.photo_consent;
    if (change.leaving !== undefined) c.status = 'left';
  }
  async staff() {
    return structuredClone(this.seed.staff);
  }
  async addStaff(staff: T.NewStaff) {
    this.calls.push(`addStaff ${staff.name} ${staff.role}`);
    if (!/^\d{4,8}$/.test(staff.pin)) throw new PortalError(400, 'bad_request', 'A PIN is 4 to 8 digits.');
    this.seed.staff.push({ id: `s${this.seed.staff.length + 1}`, name: staff.name, role: staff.role, active: true, email: staff.email ?? null });
  }
  async changeStaff(id: string, change: T.StaffChange) {
    this.calls.push(`changeStaff ${id} ${JSON.stringify(change)}`);
    const s = this.seed.staff.find((s) => s.id === id);
    if (!s) throw notFound();
    if (change.role) s.role = change.role;
    if (change.deactivate) {
      if (s.role === 'manager' && this.seed.staff.filter((x) => x.active && x.role === 'manager').length === 1) {
        throw new PortalError(409, 'last_manager', 'This is the last active manager. Make someone else a manager first.');
      }
      s.active = false;
    }
  }
  async parents() {
    return structuredClone(this.seed.parents);
  }
  async invite(body: T.NewParent) {
    const parent = wire(body);
    this.calls.push(`invite ${parent.email} ${parent.children.join(',')}`);
    if (this.seed.parents.some((p) => p.email === parent.email)) {
      throw new PortalError(409, 'exists', 'A parent with this e-mail address is already in the register.');
    }
    const id = `p${this.seed.parents.length + 1}`;
    this.seed.parents.push({ id, ...parent, invited: true, has_password: false });
    return this.invitation(id);
  }
  async resendInvite(id: string) {
    this.calls.push(`resend ${id}`);
    if (!this.seed.parents.some((p) => p.id === id)) throw notFound();
    return this.invitation(id);
  }
  private invitation(id: string): T.Invitation {
    this.invitations += 1;
    return {
      id,
      link: `https://localhost:8443/#/invite/${String(this.invitations).padStart(64, '0')}`,
      expires_at: new Date(this.now() + 7 * 86_400_000).toISOString(),
    };
  }
  async link(parent: string, child: string) {
    this.calls.push(`link ${parent} ${child}`);
    const p = this.seed.parents.find((p) => p.id === parent);
    if (!p) throw notFound();
    if (!p.children.includes(child)) p.children.push(child);
  }
  async unlink(parent: string, child: string, totp: string) {
    this.calls.push(`unlink ${parent} ${child} ${totp}`);
    this.fresh(totp);
    const p = this.seed.parents.find((p) => p.id === parent);
    if (!p) throw notFound();
    p.children = p.children.filter((c) => c !== child);
  }
  async rooms() {
    return structuredClone(this.seed.rooms);
  }
  async coverage(days: number) {
    this.calls.push(`coverage ${days}`);
    const c = this.seed.coverage[days];
    if (!c) throw new PortalError(400, 'bad_request', 'Choose 7, 30 or 90 days.');
    return structuredClone(c);
  }
  async pendingContributions() {
    return structuredClone(this.seed.contributions.filter((c) => c.status === 'pending'));
  }
  async approve(id: string) {
    this.calls.push(`approve ${id}`);
    const c = this.seed.contributions.find((c) => c.id === id);
    if (!c) throw notFound();
    c.status = 'approved';
    return { id, status: 'approved' as const };
  }
  async reject(id: string, reason: string) {
    this.calls.push(`reject ${id} ${reason}`);
    if (!reason.trim()) throw new PortalError(400, 'bad_request', 'Say why, so the parent knows.');
    const c = this.seed.contributions.find((c) => c.id === id);
    if (!c) throw notFound();
    c.status = 'rejected';
    return { id, status: 'rejected' as const };
  }
  async audit(filter: T.AuditFilter) {
    this.calls.push(`audit ${auditQuery(filter)}`);
    return structuredClone(
      this.seed.audit.filter(
        (e) => (!filter.device || e.device === filter.device) && (!filter.action || e.action === filter.action) && (!filter.since || e.at >= filter.since),
      ),
    );
  }
  auditCsvUrl(filter: T.AuditFilter) {
    return `/api/v1/admin/audit.csv${auditQuery(filter)}`;
  }
  async policy() {
    return structuredClone(this.seed.policy);
  }
  async setPolicy(body: T.AdminPolicy) {
    const policy = wire(body);
    this.calls.push(`setPolicy ${JSON.stringify(policy)}`);
    if (policy.lock_after_secs >= policy.wipe_after_secs) {
      throw new PortalError(400, 'bad_request', 'Lock after must be shorter than wipe after.');
    }
    this.seed.policy = policy;
    return wire(policy);
  }
}
