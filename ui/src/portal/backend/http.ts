// The HTTP implementation: same-origin fetches with the session cookie (HttpOnly, so script
// never sees it). State-changing requests pass the server's Origin/Sec-Fetch-Site check
// because the browser sends those headers itself.
import type {
  Agreement,
  Contribution,
  ContributionCreated,
  Created,
  InvitationInfo,
  JournalPage,
  SessionInfo,
  TotpSetup,
} from '../generated/api';
import { HttpConsole } from '../console/http';
import type { MeWithRole, MfaAnswer, SignInAnswer } from '../console/types';
import { type PortalBackend, PortalError } from './backend';
import { call, refusal } from './call';

export class HttpBackend implements PortalBackend {
  readonly admin = new HttpConsole();
  signIn(email: string, password: string) {
    return call<SignInAnswer>('POST', '/api/v1/session', { email, password });
  }
  async mfa(code: string) {
    // An older server answers 204 with no body.
    return (await call<MfaAnswer | undefined>('POST', '/api/v1/session/mfa', { code })) ?? {};
  }
  invitation(token: string) {
    return call<InvitationInfo>('GET', `/api/v1/invitations/${encodeURIComponent(token)}`);
  }
  acceptInvitation(token: string, password: string) {
    return call<void>('POST', `/api/v1/invitations/${encodeURIComponent(token)}`, { password });
  }
  totpStart() {
    return call<TotpSetup>('POST', '/api/v1/account/totp');
  }
  totpConfirm(code: string) {
    return call<void>('POST', '/api/v1/account/totp/confirm', { code });
  }
  totpOff(code: string) {
    return call<void>('DELETE', '/api/v1/account/totp', { code });
  }
  signOut() {
    return call<void>('DELETE', '/api/v1/session');
  }
  async me() {
    try {
      return await call<MeWithRole>('GET', '/api/v1/me');
    } catch (e) {
      if (e instanceof PortalError && e.status === 401) return null;
      throw e;
    }
  }
  agreement() {
    return call<Agreement>('GET', '/api/v1/agreement');
  }
  acceptAgreement(version: string) {
    return call<void>('POST', '/api/v1/agreement', { version });
  }
  answerConsent(child: string, photoConsent: boolean) {
    return call<void>('POST', `/api/v1/children/${encodeURIComponent(child)}/consent`, {
      photo_consent: photoConsent,
    });
  }
  journal(child: string, before?: string | null) {
    const q = before ? `?before=${encodeURIComponent(before)}` : '';
    return call<JournalPage>('GET', `/api/v1/children/${encodeURIComponent(child)}/journal${q}`);
  }
  async reply(entry: string, text: string) {
    return (await call<Created>('POST', `/api/v1/entries/${encodeURIComponent(entry)}/replies`, { text })).id;
  }
  sessions() {
    return call<SessionInfo[]>('GET', '/api/v1/sessions');
  }
  endSession(id: string) {
    return call<void>('DELETE', `/api/v1/sessions/${encodeURIComponent(id)}`);
  }
  mediaUrl(url: string) {
    return url;
  }
  contributions(child: string) {
    return call<Contribution[]>('GET', `/api/v1/children/${encodeURIComponent(child)}/contributions`);
  }
  /** XMLHttpRequest rather than fetch: only it reports upload progress. */
  contribute(child: string, text: string, files: File[], progress?: (sent: number) => void) {
    const form = new FormData();
    form.append('text', text);
    for (const f of files) form.append('file', f, f.name);
    return new Promise<ContributionCreated>((resolve, reject) => {
      if (!navigator.onLine) {
        reject(new PortalError(0, 'offline', 'offline'));
        return;
      }
      const xhr = new XMLHttpRequest();
      xhr.open('POST', `/api/v1/children/${encodeURIComponent(child)}/contributions`);
      xhr.withCredentials = true;
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable && progress) progress(e.loaded / e.total);
      };
      xhr.onload = () => {
        if (xhr.status === 201) {
          resolve(JSON.parse(xhr.responseText) as ContributionCreated);
        } else {
          reject(refusal(xhr.status, xhr.statusText, xhr.responseText, xhr.getResponseHeader('retry-after')));
        }
      };
      xhr.onerror = () => reject(new PortalError(0, 'offline', 'offline'));
      xhr.send(form);
    });
  }
  listen(changed: (child: string) => void, ready: () => void) {
    const source = new EventSource('/api/v1/events');
    source.addEventListener('ready', () => ready());
    source.addEventListener('journal', (e) => {
      try {
        const child = (JSON.parse((e as MessageEvent<string>).data) as { child?: string }).child;
        if (child) changed(child);
      } catch {
        // Not an event this version understands.
      }
    });
    return () => source.close();
  }
}
