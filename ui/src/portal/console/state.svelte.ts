// The console's state that outlives a section: which section is open, the roster lists that
// several sections use (names for ids), and how a refusal is told. Each section keeps its own
// data; the server decides every rule.
import { PortalError } from '../backend/backend';
import type { PortalState } from '../state/portal.svelte';
import type { ConsoleBackend } from './backend';
import { ct } from './strings';
import type { AdminChild, AdminDevice, AdminParent, AdminRoom, AdminStaff } from './types';

export type Section = 'tablets' | 'roster' | 'approvals' | 'monitoring' | 'audit' | 'policy';
export const SECTIONS: Section[] = ['tablets', 'roster', 'approvals', 'monitoring', 'audit', 'policy'];

export interface ConsoleOptions {
  /** How often the register is fetched while it is shown. */
  pollMs?: number;
  /** How often countdowns move. */
  tickMs?: number;
  /** The clock countdowns read (tests set it). */
  now?: () => number;
  /** Polling stops after this long without a tap or key, so the session can expire when idle. */
  pauseAfterMs?: number;
}

export class ConsoleState {
  section = $state<Section>('tablets');
  /** A confirmation of what was just done ("Tablet wiped"), shown briefly. */
  toast = $state<string | null>(null);
  devices = $state<AdminDevice[]>([]);
  children = $state<AdminChild[]>([]);
  staff = $state<AdminStaff[]>([]);
  parents = $state<AdminParent[]>([]);
  rooms = $state<AdminRoom[]>([]);
  /** The tablet whose log the audit section opens with (its custody log), once. */
  auditDevice: string | null = null;
  readonly api: ConsoleBackend;
  readonly portal: PortalState;
  readonly pollMs: number;
  readonly tickMs: number;
  readonly now: () => number;
  readonly pauseAfterMs: number;
  /** When the manager last tapped or typed in the console. */
  lastActive: number;
  private toastTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(portal: PortalState, options: ConsoleOptions = {}) {
    this.portal = portal;
    this.api = portal.backend.admin;
    this.pollMs = options.pollMs ?? 5000;
    this.tickMs = options.tickMs ?? 1000;
    this.now = options.now ?? Date.now;
    this.pauseAfterMs = options.pauseAfterMs ?? 10 * 60_000;
    this.lastActive = this.now();
  }

  /** The manager is here (a tap or a key). */
  touch() {
    this.lastActive = this.now();
  }

  /**
   * Whether background polling should wait: the page is hidden, or nobody has used it for a
   * while. Every request renews the session's idle time, so a register left open must stop
   * asking, or a console left unattended would never be signed out.
   */
  away(): boolean {
    return globalThis.document?.visibilityState === 'hidden' || this.now() - this.lastActive > this.pauseAfterMs;
  }

  open(section: Section) {
    this.section = section;
    this.toast = null;
  }

  /** The tablet the audit section was opened for, once. */
  takeAuditDevice(): string | null {
    const d = this.auditDevice;
    this.auditDevice = null;
    return d;
  }

  /** A tablet's custody log: its unlocks, syncs and every action on it, from the audit log. */
  showLog(device: string) {
    this.auditDevice = device;
    this.open('audit');
  }

  say(message: string) {
    this.toast = message;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => (this.toast = null), 6000);
  }

  /**
   * The sentence to show for a refusal: the server's own message. Every admin path answers 404
   * to a client that is not a signed-in manager, so a 404 (or a 401) whose session has ended
   * sends the manager to the sign-in instead.
   */
  async explain(e: unknown): Promise<string> {
    if (!(e instanceof PortalError)) return String(e);
    if (e.code === 'offline') return ct.offline;
    if (e.status === 401 || e.status === 404) {
      const me = await this.portal.backend.me().catch(() => undefined);
      if (me === null) {
        this.portal.expired();
        return e.message;
      }
    }
    return e.message || e.code;
  }

  /** Runs `f`; on a refusal returns its sentence, otherwise `null`. */
  async attempt(f: () => Promise<void>): Promise<string | null> {
    try {
      await f();
      return null;
    } catch (e) {
      return this.explain(e);
    }
  }

  async loadDevices() {
    this.devices = await this.api.devices();
  }

  /** Children, staff, parents and rooms, which the roster, approvals and audit name. */
  async loadRoster() {
    const [children, staff, parents, rooms] = await Promise.all([this.api.children(), this.api.staff(), this.api.parents(), this.api.rooms()]);
    this.children = children;
    this.staff = staff;
    this.parents = parents;
    this.rooms = rooms;
  }

  staffName(id: string | null | undefined, fallback: string = ct.none): string {
    return this.staff.find((s) => s.id === id)?.name ?? fallback;
  }

  childName(id: string): string {
    return this.children.find((c) => c.id === id)?.name ?? id;
  }
}
