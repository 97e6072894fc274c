// The one interface the portal's screens talk to. `HttpBackend` calls the server's /api/v1/;
// `MemoryBackend` serves component tests. Types come from the generated OpenAPI types.
import type { Agreement, Contribution, ContributionCreated, InvitationInfo, JournalPage, SessionInfo, TotpSetup } from '../generated/api';
import type { ConsoleBackend } from '../console/backend';
import type { MeWithRole, MfaAnswer, SignInAnswer } from '../console/types';

export interface PortalBackend {
  /** A manager's first sign-in also brings the TOTP set-up (`totp_setup`, QR code, secret). */
  signIn(email: string, password: string): Promise<SignInAnswer>;
  /**
   * Completes a sign-in that answered `mfa_required` with a code from the authenticator app
   * (or a manager's recovery code); the first code of a set-up brings the recovery codes.
   */
  mfa(code: string): Promise<MfaAnswer>;
  /** Whom an invitation link is for; a `not_found` refusal when used, expired or unknown. */
  invitation(token: string): Promise<InvitationInfo>;
  acceptInvitation(token: string, password: string): Promise<void>;
  totpStart(): Promise<TotpSetup>;
  totpConfirm(code: string): Promise<void>;
  totpOff(code: string): Promise<void>;
  signOut(): Promise<void>;
  /** The signed-in parent or manager, or `null` when signed out. */
  me(): Promise<MeWithRole | null>;
  agreement(): Promise<Agreement>;
  acceptAgreement(version: string): Promise<void>;
  answerConsent(child: string, photoConsent: boolean): Promise<void>;
  journal(child: string, before?: string | null): Promise<JournalPage>;
  reply(entry: string, text: string): Promise<string>;
  sessions(): Promise<SessionInfo[]>;
  endSession(id: string): Promise<void>;
  /** The address an `<img>` loads a photo from. */
  mediaUrl(url: string): string;
  /** The parent's own contributions for a child, newest first, with their outcome. */
  contributions(child: string): Promise<Contribution[]>;
  /** Sends a contribution from home; `progress` hears the share of bytes sent (0 to 1). */
  contribute(child: string, text: string, files: File[], progress?: (sent: number) => void): Promise<ContributionCreated>;
  /**
   * Listens for changes to the parent's children's journals; `changed` hears the child's id,
   * `ready` each time the stream (re)connects. Returns the function that stops listening.
   */
  listen(changed: (child: string) => void, ready: () => void): () => void;
  /** The manager console's endpoints (`/api/v1/admin/`). */
  readonly admin: ConsoleBackend;
}

/** A refusal from the server: the stable code decides what the screen shows. */
export class PortalError extends Error {
  readonly code: string;
  readonly status: number;
  readonly retryAfter: number | null;

  constructor(status: number, code: string, message: string, retryAfter: number | null = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}
