// An in-memory backend with the same behaviour the Rust side has where the screens depend on
// it (PIN attempts and back-off, photo consent on group photos, drafts, revisions, reviews),
// for component tests. Nothing here is a second implementation of the rules for production.
import type {
  AppStatus,
  ChildDto,
  CoverageDto,
  DoneReport,
  EnrolPreviewDto,
  EntryChange,
  EntryDto,
  NewObservation,
  RevisionDto,
  SessionInfo,
  StaffTileDto,
  StagedMedia,
  SyncStatus,
} from '../generated/bindings';
import { type Backend, BackendError } from './backend';

export interface MemoryStaff extends StaffTileDto {
  pin: string;
}

export interface MemorySeed {
  settingName: string;
  enrolled: boolean;
  staff: MemoryStaff[];
  children: (Omit<ChildDto, 'is_key_child' | 'not_observed' | 'pending' | 'last_observed_at'> & { key_worker: string })[];
  entries: EntryDto[];
  maxPinFailures: number;
}

const DAY = 86_400_000;

export class MemoryBackend implements Backend {
  calls: string[] = [];
  seed: MemorySeed;
  session: SessionInfo | null = null;
  failures = 0;
  throttled = false;
  blocked: AppStatus['blocked'] = null;
  syncState: SyncStatus = {
    syncing: false,
    pending_media: 0,
    pending_at_start: 0,
    unsynced_docs: 0,
    last_sync: null,
    online: true,
    last_error: null,
    last_error_message: null,
  };
  staged = new Map<string, StagedMedia & { bytes: Uint8Array }>();
  revisionsOf = new Map<string, RevisionDto[]>();
  now = () => Date.now();
  private n = 0;

  constructor(seed: MemorySeed) {
    this.seed = structuredClone(seed);
  }

  private id() {
    this.n += 1;
    return `00000000-0000-4000-8000-${String(this.n).padStart(12, '0')}`;
  }

  private me() {
    if (!this.session) throw new BackendError('auto_locked', 'the tablet locked itself');
    return this.session;
  }

  async status(): Promise<AppStatus> {
    this.calls.push('status');
    const phase = this.blocked ? 'blocked' : !this.seed.enrolled ? 'enrol' : this.session ? 'unlocked' : 'locked';
    return {
      phase,
      blocked: this.blocked,
      setting_name: this.seed.enrolled ? this.seed.settingName : null,
      device_id: this.seed.enrolled ? 'device-1' : null,
      session: this.session,
      policies: { inactivity_lock_secs: 120, not_observed_days: 14 },
      locked_until_sync: this.failures >= this.seed.maxPinFailures ? 'pin_failures' : null,
      pin_attempts_left: Math.max(0, this.seed.maxPinFailures - this.failures),
      enrol_link: null,
    };
  }

  async previewEnrolment(_server: string, fingerprint: string): Promise<EnrolPreviewDto> {
    const matches = fingerprint.endsWith('a'.repeat(8));
    return { setting_name: matches ? this.seed.settingName : null, presented_fingerprint: 'sha256:' + 'a'.repeat(64), matches };
  }

  async enrol(_server: string, code: string): Promise<AppStatus> {
    if (code === 'USED0-USED0') throw new BackendError('enrol_code_used', 'the code was used');
    if (code === 'OLD00-OLD00') throw new BackendError('enrol_code_expired', 'the code expired');
    if (code !== 'GOOD0-GOOD0') throw new BackendError('enrol_code_invalid', 'wrong code');
    this.seed.enrolled = true;
    return this.status();
  }

  async staffTiles(): Promise<StaffTileDto[]> {
    return this.seed.staff.map(({ pin: _pin, ...t }) => t);
  }

  async unlock(staff: string, pin: string): Promise<SessionInfo> {
    if (this.failures >= this.seed.maxPinFailures) throw new BackendError('pin_locked', 'locked until a sync');
    // The device's back-off: from the 5th wrong PIN in a row, each attempt waits 60 s.
    if (this.throttled) throw new BackendError('pin_throttled', 'too many wrong PINs', 60);
    const s = this.seed.staff.find((x) => x.id === staff);
    if (!s) throw new BackendError('unknown_staff', 'unknown');
    if (s.pin !== pin) {
      this.failures += 1;
      if (this.failures >= this.seed.maxPinFailures) throw new BackendError('pin_locked', 'locked until a sync');
      throw new BackendError('wrong_pin', 'wrong PIN; try again');
    }
    this.failures = 0;
    this.session = { staff: s.id, name: s.name, initials: s.initials, is_manager: s.role === 'manager' };
    return this.session;
  }

  async lock() {
    this.session = null;
    this.staged.clear();
  }

  async touch() {
    this.me();
  }

  async children(): Promise<ChildDto[]> {
    const me = this.me();
    const now = this.now();
    const out = this.seed.children.map((c) => {
      const mine = this.seed.entries.filter((e) => e.child === c.id && e.kind === 'observation');
      const last = mine.length ? Math.max(...mine.map((e) => e.created_at)) : null;
      const { key_worker, ...rest } = c;
      return {
        ...rest,
        is_key_child: key_worker === me.staff,
        last_observed_at: last,
        not_observed: last === null || last < now - 14 * DAY,
        pending: this.seed.entries.filter((e) => e.child === c.id && e.status === 'pending').length,
      };
    });
    return out.sort((a, b) => Number(b.is_key_child) - Number(a.is_key_child) || (a.room ?? '').localeCompare(b.room ?? '') || a.name.localeCompare(b.name));
  }

  async journal(child: string): Promise<EntryDto[]> {
    this.me();
    return this.seed.entries.filter((e) => e.child === child).sort((a, b) => b.created_at - a.created_at);
  }

  async revisions(_child: string, entry: string): Promise<RevisionDto[]> {
    return this.revisionsOf.get(entry) ?? [];
  }

  async stageMedia(bytes: Uint8Array, kind: 'photo' | 'video'): Promise<StagedMedia> {
    this.me();
    const s = { id: this.id(), kind, size: bytes.length };
    this.staged.set(s.id, { ...s, bytes });
    return s;
  }

  async discardMedia(id: string) {
    this.staged.delete(id);
  }

  async observe(o: NewObservation): Promise<string> {
    const me = this.me();
    if (o.children.length === 0) throw new BackendError('rule', 'choose at least one child');
    if (o.media.length > 0 && o.children.length > 1) {
      const without = this.seed.children.find((c) => o.children.includes(c.id) && c.photo_consent !== 'yes');
      if (without) throw new BackendError('consent_missing', `${without.name} does not have photo consent`, null, without.id);
    }
    const id = this.id();
    for (const child of o.children) {
      this.seed.entries.push({
        id,
        child,
        kind: 'observation',
        status: o.draft ? 'draft' : 'published',
        author_name: me.name,
        author_kind: 'staff',
        created_at: this.now(),
        edited_at: null,
        text: o.text,
        next_steps: o.next_steps,
        areas: o.areas,
        band: o.band,
        coel: o.coel,
        with_children: o.children.filter((c) => c !== child).map((c) => this.seed.children.find((x) => x.id === c)?.name ?? ''),
        media: o.media.map((m) => ({ sha256: m.padEnd(64, '0'), kind: this.staged.get(m)?.kind ?? 'photo', mime: 'image/jpeg', width: 2048, height: 1536, state: 'captured' })),
        replies: [],
      });
    }
    this.syncState.pending_media += o.media.length;
    o.media.forEach((m) => this.staged.delete(m));
    return id;
  }

  private copies(entry: string) {
    const c = this.seed.entries.filter((e) => e.id === entry);
    if (!c.length) throw new BackendError('rule', 'that entry no longer exists');
    return c;
  }

  async publish(entry: string) {
    this.me();
    this.copies(entry).forEach((e) => (e.status = 'published'));
  }

  async edit(entry: string, change: EntryChange) {
    const me = this.me();
    for (const e of this.copies(entry)) {
      this.revisionsOf.set(entry, [...(this.revisionsOf.get(entry) ?? []), { by_name: me.name, at: this.now(), text: change.text, next_steps: change.next_steps }]);
      Object.assign(e, { text: change.text, next_steps: change.next_steps, areas: change.areas, band: change.band, coel: change.coel, edited_at: this.now() });
    }
  }

  async reply(entry: string, child: string, text: string) {
    const me = this.me();
    const e = this.copies(entry).find((x) => x.child === child);
    if (!e) throw new BackendError('rule', 'that entry no longer exists');
    const id = this.id();
    e.replies.push({ id, author_kind: 'staff', author_name: me.name, created_at: this.now(), text });
    return id;
  }

  async pending(): Promise<EntryDto[]> {
    this.me();
    return this.seed.entries.filter((e) => e.status === 'pending');
  }

  async approve(entry: string) {
    this.me();
    this.copies(entry).forEach((e) => (e.status = 'published'));
  }

  async reject(entry: string, reason: string) {
    const me = this.me();
    if (!reason.trim()) throw new BackendError('invalid_input', 'give a reason');
    this.copies(entry).forEach((e) => {
      e.status = 'rejected';
      e.replies.push({ id: this.id(), author_kind: 'staff', author_name: me.name, created_at: this.now(), text: reason });
    });
  }

  async coverage(days: number): Promise<CoverageDto> {
    const me = this.me();
    if (!me.is_manager) throw new BackendError('rule', 'only a manager can do this');
    const since = this.now() - days * DAY;
    const obs = this.seed.entries.filter((e) => e.kind === 'observation' && e.created_at >= since);
    const perChild = this.seed.children.map((c) => {
      const all = this.seed.entries.filter((e) => e.child === c.id && e.kind === 'observation');
      return {
        id: c.id,
        name: c.name,
        key_worker_name: this.seed.staff.find((s) => s.id === c.key_worker)?.name ?? '',
        observations: obs.filter((e) => e.child === c.id).length,
        last_observed_at: all.length ? Math.max(...all.map((e) => e.created_at)) : null,
      };
    });
    const areas = ['communication-and-language', 'physical-development', 'personal-social-emotional', 'literacy', 'mathematics', 'understanding-the-world', 'expressive-arts-and-design'];
    const short = ['CL', 'PD', 'PSED', 'L', 'M', 'UW', 'EAD'];
    return {
      days,
      per_child: perChild.sort((a, b) => a.observations - b.observations),
      per_key_worker: this.seed.staff.map((s) => ({
        id: s.id,
        name: s.name,
        observations: obs.filter((e) => e.author_name === s.name).length,
        key_children: this.seed.children.filter((c) => c.key_worker === s.id).length,
      })),
      per_area: areas.map((a, i) => ({ area: a, short: short[i]!, observations: obs.filter((e) => e.areas.includes(a)).length })),
      not_observed: perChild.filter((c) => c.observations === 0),
      pending_uploads: this.syncState.pending_media,
      unsynced_docs: 0,
    };
  }

  async thumbnail(): Promise<ArrayBuffer> {
    return new ArrayBuffer(0);
  }

  async media(): Promise<ArrayBuffer> {
    return new ArrayBuffer(0);
  }

  async syncStatus(): Promise<SyncStatus> {
    return { ...this.syncState };
  }

  async syncNow(): Promise<SyncStatus> {
    this.calls.push('sync');
    if (this.syncState.online) {
      this.syncState.pending_media = 0;
      this.syncState.last_sync = this.now();
      this.failures = 0;
    }
    return { ...this.syncState };
  }

  async done(): Promise<DoneReport> {
    const synced = this.syncState.online && this.syncState.pending_media > 0;
    if (synced) await this.syncNow();
    this.session = null;
    return { synced, pending_media: this.syncState.pending_media, unsynced_docs: 0, sync_error: this.syncState.online ? null : 'network' };
  }
}
