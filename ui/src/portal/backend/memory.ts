// An in-memory backend that answers as the server does where the screens depend on it (the
// agreement, then consent, then the journal; wrong passwords), for component tests. Nothing
// here is a second implementation of the rules for production.
import type { Agreement, Contribution, InvitationInfo, JournalEntry, SessionInfo } from '../generated/api';
import { type ConsoleSeed, MemoryConsole } from '../console/memory';
import type { MeWithRole, SignInAnswer } from '../console/types';
import { type PortalBackend, PortalError } from './backend';

export interface MemorySeed {
  email: string;
  password: string;
  me: MeWithRole;
  agreement: Agreement;
  journals: Record<string, { child_name: string; entries: JournalEntry[] }>;
  sessions: SessionInfo[];
  contributions?: Record<string, Contribution[]>;
  /** Invitation tokens and whom they are for. */
  invitations?: Record<string, InvitationInfo>;
  /** The one code the pretend authenticator app shows. */
  totpCode?: string;
  /** A manager's recovery codes: given once when TOTP is set up, each accepted once. */
  recoveryCodes?: string[];
  /** The console's register, roster, queue and figures, for a manager. */
  console?: ConsoleSeed;
}

const NO_CONSOLE: ConsoleSeed = {
  devices: [],
  children: [],
  staff: [],
  parents: [],
  rooms: [],
  coverage: {},
  contributions: [],
  audit: [],
  policy: {
    lock_after_secs: 43_200,
    wipe_after_secs: 7_776_000,
    max_pin_failures: 10,
    inactivity_lock_secs: 120,
    allow_networks: [],
    not_observed_days: 14,
    review_gate: false,
    agreement_text: '',
    agreement_version: '1',
  },
  enrolCode: { code: '', url: '', ca_fingerprint: '', qr_svg: '', expires_at: '' },
};

export class MemoryBackend implements PortalBackend {
  calls: string[] = [];
  signedIn = false;
  /** Password right, code still to come. */
  half = false;
  seed: MemorySeed;
  readonly admin: MemoryConsole;

  constructor(seed: MemorySeed) {
    this.seed = structuredClone(seed);
    this.admin = new MemoryConsole(seed.console ?? NO_CONSOLE, seed.totpCode ?? '');
  }

  async signIn(email: string, password: string) {
    this.calls.push('signIn');
    if (email.trim().toLowerCase() !== this.seed.email || password !== this.seed.password) {
      throw new PortalError(401, 'wrong_credentials', 'wrong');
    }
    if (this.seed.me.totp_enabled) {
      this.half = true;
      return { mfa_required: true };
    }
    if (this.seed.me.role === 'manager') {
      // A manager is never signed in by password alone: the first time, set TOTP up.
      this.half = true;
      const setup = await this.totpStart();
      return { mfa_required: true, totp_setup: setup.otpauth_uri, totp_qr_svg: setup.qr_svg, totp_secret: setup.secret } satisfies SignInAnswer;
    }
    this.signedIn = true;
    return { mfa_required: false };
  }
  async mfa(code: string) {
    this.calls.push(`mfa ${code}`);
    if (!this.half) throw new PortalError(401, 'signed_out', 'signed out');
    const c = code.replace(/\s/g, '');
    const recovery = this.seed.me.totp_enabled ? (this.seed.recoveryCodes ?? []).indexOf(c.toLowerCase()) : -1;
    if (c !== this.seed.totpCode && recovery < 0) throw new PortalError(401, 'wrong_code', 'wrong');
    if (recovery >= 0) this.seed.recoveryCodes?.splice(recovery, 1);
    this.half = false;
    this.signedIn = true;
    if (!this.seed.me.totp_enabled && this.seed.me.role === 'manager') {
      this.seed.me.totp_enabled = true;
      return { recovery_codes: [...(this.seed.recoveryCodes ?? [])] };
    }
    return {};
  }
  async invitation(token: string) {
    const i = this.seed.invitations?.[token];
    if (!i) throw new PortalError(404, 'not_found', 'This invitation link has been used or has expired.');
    return structuredClone(i);
  }
  async acceptInvitation(token: string, password: string) {
    this.calls.push(`invite ${token}`);
    if (!this.seed.invitations?.[token]) throw new PortalError(404, 'not_found', 'used');
    if (password.length < 12) throw new PortalError(400, 'password_too_short', 'short');
    if (password.toLowerCase() === 'password1234') throw new PortalError(400, 'password_too_common', 'common');
    delete this.seed.invitations[token];
    this.seed.password = password;
  }
  async totpStart() {
    this.calls.push('totpStart');
    return {
      secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
      otpauth_uri: 'otpauth://totp/Sprig:alex%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Sprig',
      qr_svg: '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
    };
  }
  async totpConfirm(code: string) {
    this.calls.push(`totpConfirm ${code}`);
    if (code !== this.seed.totpCode) throw new PortalError(400, 'wrong_code', 'wrong');
    this.seed.me.totp_enabled = true;
  }
  async totpOff(code: string) {
    this.calls.push(`totpOff ${code}`);
    if (code !== this.seed.totpCode) throw new PortalError(400, 'wrong_code', 'wrong');
    this.seed.me.totp_enabled = false;
  }
  async signOut() {
    this.calls.push('signOut');
    this.signedIn = false;
  }
  async me() {
    return this.signedIn ? structuredClone(this.seed.me) : null;
  }
  async agreement() {
    return this.seed.agreement;
  }
  async acceptAgreement(version: string) {
    this.calls.push(`accept ${version}`);
    if (version !== this.seed.agreement.version) throw new PortalError(409, 'agreement_changed', 'changed');
    this.seed.me.agreement_required = false;
  }
  async answerConsent(child: string, photoConsent: boolean) {
    this.calls.push(`consent ${child} ${photoConsent}`);
    const c = this.seed.me.children.find((c) => c.id === child);
    if (!c) throw new PortalError(404, 'not_found', 'not found');
    c.consent_required = false;
    c.photo_consent = photoConsent;
  }
  async journal(child: string) {
    const j = this.seed.journals[child];
    if (!j) throw new PortalError(404, 'not_found', 'not found');
    return { child_name: j.child_name, entries: structuredClone(j.entries), next: null };
  }
  async reply(entry: string, text: string) {
    this.calls.push(`reply ${entry} ${text}`);
    for (const j of Object.values(this.seed.journals)) {
      const e = j.entries.find((e) => e.id === entry);
      if (e) {
        e.replies.push({ author: 'You', created_at: Date.now(), text });
        return 'r1';
      }
    }
    throw new PortalError(404, 'not_found', 'not found');
  }
  async sessions() {
    return structuredClone(this.seed.sessions);
  }
  async endSession(id: string) {
    this.calls.push(`end ${id}`);
    const i = this.seed.sessions.findIndex((s) => s.id === id);
    if (i < 0) throw new PortalError(404, 'not_found', 'not found');
    const [ended] = this.seed.sessions.splice(i, 1);
    if (ended?.current) this.signedIn = false;
  }
  mediaUrl(url: string) {
    return url;
  }
  /** What `listen` was given, so a test can announce a change. */
  listener: ((child: string) => void) | null = null;
  async contributions(child: string) {
    if (!this.seed.journals[child]) throw new PortalError(404, 'not_found', 'not found');
    return structuredClone(this.seed.contributions?.[child] ?? []);
  }
  async contribute(child: string, text: string, files: File[], progress?: (sent: number) => void) {
    this.calls.push(`contribute ${child} ${text} ${files.length}`);
    if (!this.seed.journals[child]) throw new PortalError(404, 'not_found', 'not found');
    if (files.some((f) => f.size > 1024 * 1024)) throw new PortalError(413, 'too_large', 'too large');
    progress?.(1);
    const c: Contribution = { id: `k${Date.now()}`, created_at: Date.now(), text, status: 'pending', reason: null, media: [] };
    this.seed.contributions ??= {};
    (this.seed.contributions[child] ??= []).unshift(c);
    return { id: c.id, status: 'pending' };
  }
  listen(changed: (child: string) => void, ready: () => void) {
    this.listener = changed;
    ready();
    return () => {
      this.listener = null;
    };
  }
}
