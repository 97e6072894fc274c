// The app's state that outlives a screen: where we are, who is unlocked, sync progress, the
// inactivity lock and the background sync timer. Screens read it and call its methods.
import type { AppStatus, ChildDto, DoneReport, SyncStatus } from '../generated/bindings';
import { type Backend, BackendError, errorCode } from '../backend/backend';

export type View =
  | { name: 'home'; tab: 'children' | 'approvals' | 'coverage' }
  | { name: 'journal'; child: ChildDto }
  | { name: 'capture'; preset: string[] };

const SYNC_EVERY_MS = 60_000;
/** How long one wait for the server's notice lasts, and the pause after a failed one. */
const WATCH_WAIT_SECS = 25;
const WATCH_RETRY_MS = 15_000;
const WATCH_IDLE_MS = 1_000;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class AppState {
  status = $state<AppStatus | null>(null);
  view = $state<View>({ name: 'home', tab: 'children' });
  sync = $state<SyncStatus | null>(null);
  toast = $state<{ message: string; tone: 'ok' | 'danger' | 'info' } | null>(null);
  children = $state<ChildDto[]>([]);
  pendingCount = $state(0);
  doneReport = $state<DoneReport | null>(null);
  browserOnline = $state(true);
  /** Counts syncs that the server's watch notice started: open screens reload when it moves. */
  revision = $state(0);

  private lastActivity = Date.now();
  private timers: ReturnType<typeof setInterval>[] = [];
  private toastTimer: ReturnType<typeof setTimeout> | undefined;
  private touchSent = 0;
  private watching = false;

  constructor(readonly backend: Backend) {}

  get phase() {
    return this.status?.phase ?? null;
  }

  async refresh() {
    this.status = await this.backend.status();
    if (this.status.phase === 'unlocked') await this.loadChildren();
    if ((this.status.phase === 'locked' || this.status.phase === 'unlocked') && this.sync === null) {
      this.sync = await this.backend.syncStatus().catch(() => null);
    }
    return this.status;
  }

  async loadChildren() {
    try {
      this.children = await this.backend.children();
      this.pendingCount = this.children.reduce((n, c) => n + c.pending, 0);
    } catch (e) {
      await this.handle(e);
    }
  }

  /** A refusal that means the session or the tablet changed state: go where it says. */
  async handle(e: unknown): Promise<boolean> {
    const code = errorCode(e);
    if (code === 'auto_locked' || ['device_revoked', 'certificate_refused', 'wiped', 'self_wiped', 'device_quarantined', 'lease_expired', 'clock_behind'].includes(code)) {
      await this.refresh();
      return true;
    }
    return false;
  }

  show(message: string, tone: 'ok' | 'danger' | 'info' = 'ok') {
    this.toast = { message, tone };
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => (this.toast = null), 3500);
  }

  go(view: View) {
    this.view = view;
  }

  /** A tap or key press: postpones the inactivity lock (and tells Rust, which enforces it). */
  activity() {
    this.lastActivity = Date.now();
    if (this.phase === 'unlocked' && Date.now() - this.touchSent > 10_000) {
      this.touchSent = Date.now();
      this.backend.touch().catch((e) => this.handle(e));
    }
  }

  async lockNow() {
    await this.backend.lock();
    this.view = { name: 'home', tab: 'children' };
    await this.refresh();
  }

  async syncNow() {
    const poll = setInterval(async () => {
      try {
        this.sync = await this.backend.syncStatus();
      } catch {
        /* the sync's own answer follows */
      }
    }, 400);
    try {
      this.sync = await this.backend.syncNow();
    } catch (e) {
      if (!(e instanceof BackendError)) throw e;
    } finally {
      clearInterval(poll);
    }
    const before = this.status?.phase;
    await this.refresh();
    if (before !== this.status?.phase) this.view = { name: 'home', tab: 'children' };
    return this.sync;
  }

  /** Starts the background sync (every minute and when the network returns) and the lock timer. */
  start() {
    const tick = () => {
      if (this.phase === 'locked' || this.phase === 'unlocked') void this.syncNow();
    };
    this.timers.push(setInterval(tick, SYNC_EVERY_MS));
    this.timers.push(
      setInterval(() => {
        const limit = (this.status?.policies.inactivity_lock_secs ?? 120) * 1000;
        if (this.phase === 'unlocked' && Date.now() - this.lastActivity >= limit) void this.lockNow();
      }, 1000),
    );
    this.timers.push(
      setInterval(async () => {
        if (this.phase === 'locked' || this.phase === 'unlocked') {
          try {
            this.sync = await this.backend.syncStatus();
            // The lease can run out while the tablet sits on the lock screen.
            if (this.phase === 'locked') await this.refresh();
          } catch {
            /* shown on the next sync */
          }
        }
      }, 5000),
    );
    void this.watch();
    window.addEventListener('online', () => {
      this.browserOnline = true;
      tick();
    });
    window.addEventListener('offline', () => (this.browserOnline = false));
    this.browserOnline = navigator.onLine;
  }

  /**
   * While the app runs, keeps a watch on the server: when another tablet syncs or a manager
   * changes something, the server says so and this tablet syncs at once. Offline or refused,
   * it waits a little and tries again; the minute's sync covers the gap.
   */
  private async watch() {
    if (this.watching) return;
    this.watching = true;
    try {
      while (this.timers.length > 0) {
        if ((this.phase !== 'locked' && this.phase !== 'unlocked') || !this.browserOnline) {
          // Not enrolled yet, blocked or offline: look again soon.
          await pause(WATCH_IDLE_MS);
          continue;
        }
        try {
          if (await this.backend.waitForChanges(WATCH_WAIT_SECS)) {
            await this.syncNow();
            this.revision++;
          }
        } catch (e) {
          await this.handle(e);
          await pause(WATCH_RETRY_MS);
        }
      }
    } finally {
      this.watching = false;
    }
  }

  stop() {
    this.timers.forEach(clearInterval);
    this.timers = [];
  }
}
