// The portal's state: who is signed in, which step they are at (agreement, consent, journal),
// and the journal page shown. The server decides every rule; this only follows its answers.
import type { Agreement, Contribution, InvitationInfo, JournalEntry, SessionInfo, TotpSetup } from '../generated/api';
import type { MeWithRole } from '../console/types';
import { type PortalBackend, PortalError } from '../backend/backend';
import { errorText } from '../strings';

export type Screen =
  | 'loading'
  | 'signin'
  | 'mfa'
  | 'invite'
  | 'invite-gone'
  | 'agreement'
  | 'consent'
  | 'journal'
  | 'account'
  | 'share'
  | 'recovery'
  | 'console';

/** The token of an invitation link's address, `#/invite/TOKEN`. */
export function inviteToken(hash: string): string | null {
  const m = /^#\/invite\/([0-9a-f]{64})$/.exec(hash);
  return m?.[1] ?? null;
}

export class PortalState {
  screen = $state<Screen>('loading');
  me = $state<MeWithRole | null>(null);
  agreement = $state<Agreement | null>(null);
  child = $state<string | null>(null);
  childName = $state('');
  entries = $state<JournalEntry[]>([]);
  next = $state<string | null>(null);
  error = $state<string | null>(null);
  notice = $state<string | null>(null);
  sessions = $state<SessionInfo[]>([]);
  busy = $state(false);
  /** The parent's own contributions for the child shown, newest first. */
  contributions = $state<Contribution[]>([]);
  /** The share of an upload sent (0 to 1) while one is under way. */
  progress = $state<number | null>(null);
  /** The invitation being answered, and its token. */
  invitation = $state<InvitationInfo | null>(null);
  inviteToken: string | null = null;
  /** The address to sign in with, filled in after an invitation. */
  email = $state('');
  /** A second factor being set up, until its first code confirms it. */
  totpSetup = $state<TotpSetup | null>(null);
  /** A manager's first sign-in: the second factor to add before the first code. */
  mfaSetup = $state<TotpSetup | null>(null);
  /** A manager's recovery codes, shown once right after the set-up. */
  recoveryCodes = $state<string[] | null>(null);
  readonly backend: PortalBackend;
  private stopListening: (() => void) | null = null;
  private connectedOnce = false;

  constructor(backend: PortalBackend) {
    this.backend = backend;
  }

  /** The session ended (expired or signed out elsewhere): back to the sign-in, saying so. */
  expired() {
    this.stopLive();
    this.me = null;
    this.error = errorText('signed_out', '');
    this.screen = 'signin';
  }

  private fail(e: unknown) {
    if (e instanceof PortalError) {
      this.error = errorText(e.code, e.message);
      if (e.code === 'signed_out' || (e.code === 'locked' && e.status === 401)) {
        this.stopLive();
        this.me = null;
        this.screen = 'signin';
      }
    } else {
      this.error = String(e);
    }
  }

  private async guard(f: () => Promise<void>) {
    this.busy = true;
    this.error = null;
    try {
      await f();
    } catch (e) {
      this.fail(e);
    } finally {
      this.busy = false;
    }
  }

  /** Opens the portal at `hash` (the address after `#`): an invitation link, or the parent's next step. */
  async start(hash: string = globalThis.location?.hash ?? '') {
    const token = inviteToken(hash);
    if (token) return this.openInvitation(token);
    await this.guard(async () => {
      this.me = await this.backend.me();
      await this.route();
    });
  }

  private openInvitation(token: string) {
    return this.guard(async () => {
      try {
        this.invitation = await this.backend.invitation(token);
        this.inviteToken = token;
        this.screen = 'invite';
      } catch (e) {
        if (e instanceof PortalError && e.status === 404) {
          this.screen = 'invite-gone';
          return;
        }
        throw e;
      }
    });
  }

  /** Sets the invited parent's password, then asks them to sign in with it. */
  setPassword(password: string) {
    return this.guard(async () => {
      const token = this.inviteToken;
      if (!token) return;
      try {
        await this.backend.acceptInvitation(token, password);
      } catch (e) {
        if (e instanceof PortalError && e.status === 404) {
          this.screen = 'invite-gone';
          return;
        }
        throw e;
      }
      this.email = this.invitation?.email ?? '';
      this.invitation = null;
      this.inviteToken = null;
      globalThis.history?.replaceState(null, '', globalThis.location?.pathname ?? '/');
      this.notice = 'password_set';
      this.screen = 'signin';
    });
  }

  /** Leaves a page that is not a sign-in (a used invitation, the code step) for the sign-in. */
  toSignIn() {
    globalThis.history?.replaceState(null, '', globalThis.location?.pathname ?? '/');
    this.error = null;
    this.notice = null;
    this.mfaSetup = null;
    this.screen = 'signin';
  }

  /** The first step the parent still has to take. */
  private async route() {
    const me = this.me;
    if (!me) {
      this.screen = 'signin';
    } else if (me.role === 'manager') {
      this.screen = 'console';
    } else if (me.agreement_required) {
      this.agreement = await this.backend.agreement();
      this.screen = 'agreement';
    } else if (me.children.some((c) => c.consent_required)) {
      this.screen = 'consent';
    } else {
      this.screen = 'journal';
      const first = me.children[0];
      if (first && !this.child) await this.load(first.id);
      this.listen();
    }
  }

  /** Live updates: the journal shown (or the contributions list) reloads when it changes. */
  private listen() {
    if (this.stopListening) return;
    this.connectedOnce = false;
    this.stopListening = this.backend.listen(
      (child) => void this.refresh(child),
      () => {
        // A reconnect may have missed changes: look again.
        if (this.connectedOnce && this.child) void this.refresh(this.child);
        this.connectedOnce = true;
      },
    );
  }

  private stopLive() {
    this.stopListening?.();
    this.stopListening = null;
  }

  /** Reloads what is shown of `child` quietly (no busy state, errors kept off the screen). */
  private async refresh(child: string) {
    if (child !== this.child) return;
    try {
      if (this.screen === 'share') {
        this.contributions = await this.backend.contributions(child);
      } else if (this.screen === 'journal') {
        const page = await this.backend.journal(child);
        if (child !== this.child) return;
        // Older pages the parent already opened stay below the fresh first page.
        const fresh = page.entries.map((e) => e.id);
        const last = page.entries.at(-1)?.created_at ?? Number.POSITIVE_INFINITY;
        const older = this.entries.filter((e) => !fresh.includes(e.id) && e.created_at < last);
        this.entries = [...page.entries, ...older];
        if (older.length === 0) this.next = page.next ?? null;
      }
    } catch {
      // The next change or a reload tries again.
    }
  }

  /** The "Share from home" screen for the child shown. */
  openShare() {
    return this.guard(async () => {
      if (!this.child) return;
      this.notice = null;
      this.contributions = await this.backend.contributions(this.child);
      this.screen = 'share';
    });
  }

  /** Sends a contribution; `true` when it arrived (the form may be cleared). */
  async share(text: string, files: File[]): Promise<boolean> {
    const child = this.child;
    if (!child) return false;
    let sent = false;
    this.notice = null;
    this.progress = 0;
    await this.guard(async () => {
      try {
        await this.backend.contribute(child, text, files, (p) => (this.progress = p));
      } finally {
        this.progress = null;
      }
      sent = true;
      this.notice = 'shared';
      this.contributions = await this.backend.contributions(child);
    });
    return sent;
  }

  closeShare() {
    return this.guard(async () => {
      this.notice = null;
      this.screen = 'journal';
      if (this.child) await this.load(this.child);
    });
  }

  signIn(email: string, password: string) {
    return this.guard(async () => {
      this.notice = null;
      const r = await this.backend.signIn(email, password);
      if (r.mfa_required) {
        this.mfaSetup =
          r.totp_setup && r.totp_secret ? { otpauth_uri: r.totp_setup, qr_svg: r.totp_qr_svg ?? '', secret: r.totp_secret } : null;
        this.screen = 'mfa';
        return;
      }
      this.me = await this.backend.me();
      await this.route();
    });
  }

  /** The code step of a sign-in. A lock (or a wait that ran out) sends the parent back. */
  submitCode(code: string) {
    return this.guard(async () => {
      let codes: string[] | null | undefined;
      try {
        codes = (await this.backend.mfa(code.trim())).recovery_codes;
      } catch (e) {
        if (e instanceof PortalError && (e.code === 'locked' || e.code === 'signed_out')) {
          this.mfaSetup = null;
          this.screen = 'signin';
        }
        throw e;
      }
      this.mfaSetup = null;
      if (codes?.length) {
        this.recoveryCodes = codes;
        this.screen = 'recovery';
        return;
      }
      this.me = await this.backend.me();
      await this.route();
    });
  }

  /** The manager has kept the recovery codes: they are forgotten here, and the console opens. */
  recoveryCodesSaved() {
    return this.guard(async () => {
      this.recoveryCodes = null;
      this.me = await this.backend.me();
      await this.route();
    });
  }

  startTotp() {
    return this.guard(async () => {
      this.notice = null;
      this.totpSetup = await this.backend.totpStart();
    });
  }

  confirmTotp(code: string) {
    return this.guard(async () => {
      await this.backend.totpConfirm(code.replace(/\s/g, ''));
      this.totpSetup = null;
      this.me = await this.backend.me();
      this.notice = 'totp_on';
    });
  }

  cancelTotp() {
    this.totpSetup = null;
    this.error = null;
  }

  turnOffTotp(code: string) {
    return this.guard(async () => {
      await this.backend.totpOff(code.replace(/\s/g, ''));
      this.me = await this.backend.me();
      this.notice = 'totp_off';
    });
  }

  accept() {
    return this.guard(async () => {
      if (!this.agreement) return;
      await this.backend.acceptAgreement(this.agreement.version);
      this.me = await this.backend.me();
      await this.route();
    });
  }

  answer(child: string, yes: boolean) {
    return this.guard(async () => {
      await this.backend.answerConsent(child, yes);
      this.me = await this.backend.me();
      await this.route();
    });
  }

  private async load(child: string) {
    const page = await this.backend.journal(child);
    this.child = child;
    this.childName = page.child_name;
    this.entries = page.entries;
    this.next = page.next ?? null;
  }

  select(child: string) {
    return this.guard(() => this.load(child));
  }

  more() {
    return this.guard(async () => {
      if (!this.child || !this.next) return;
      const page = await this.backend.journal(this.child, this.next);
      this.entries = [...this.entries, ...page.entries];
      this.next = page.next ?? null;
    });
  }

  reply(entry: string, text: string) {
    return this.guard(async () => {
      await this.backend.reply(entry, text);
      if (this.child) await this.load(this.child);
      this.notice = 'sent';
    });
  }

  /** The account page: photo-consent answers (which the parent may change) and sessions. */
  openAccount() {
    return this.guard(async () => {
      this.me = await this.backend.me();
      this.sessions = await this.backend.sessions();
      this.screen = 'account';
    });
  }

  changeConsent(child: string, yes: boolean) {
    return this.guard(async () => {
      await this.backend.answerConsent(child, yes);
      this.me = await this.backend.me();
      this.notice = 'consent';
    });
  }

  endSession(id: string) {
    return this.guard(async () => {
      const current = this.sessions.find((s) => s.id === id)?.current ?? false;
      await this.backend.endSession(id);
      if (current) {
        this.stopLive();
        this.me = null;
        this.screen = 'signin';
        return;
      }
      this.sessions = await this.backend.sessions();
    });
  }

  backToJournal() {
    return this.guard(async () => {
      this.notice = null;
      this.child = null;
      await this.route();
    });
  }

  signOut() {
    return this.guard(async () => {
      this.stopLive();
      await this.backend.signOut();
      this.me = null;
      this.child = null;
      this.entries = [];
      this.screen = 'signin';
    });
  }
}
