// One same-origin JSON request with the session cookie (HttpOnly, so script never sees it);
// shared by the portal's and the console's HTTP backends.
import { PortalError } from './backend';

/** The `{code, message}` of an error answer, or the status when it is not JSON. */
export function refusal(status: number, statusText: string, body: string, retry: string | null): PortalError {
  let code = 'http_' + status;
  let message = statusText;
  try {
    const e = JSON.parse(body) as { code?: string; message?: string };
    code = e.code ?? code;
    message = e.message ?? message;
  } catch {
    // Not JSON: keep the status.
  }
  return new PortalError(status, code, message, retry ? Number(retry) : null);
}

/** One same-origin JSON call; a refusal throws its `PortalError`. */
export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let r: Response;
  try {
    r = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    // The request never reached the server.
    throw new PortalError(0, 'offline', 'offline');
  }
  if (!r.ok) throw refusal(r.status, r.statusText, await r.text(), r.headers.get('retry-after'));
  if (r.status === 204) return undefined as T;
  return (await r.json()) as T;
}
