import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import Portal from '../src/portal/Portal.svelte';
import { PortalError } from '../src/portal/backend/backend';
import { MemoryBackend } from '../src/portal/backend/memory';
import { PortalState } from '../src/portal/state/portal.svelte';
import { expectAccessible } from './axe';
import { CLOCK, RECOVERY, managerSeed } from './console-fixture';

afterEach(() => cleanup());
// The console is a lazily loaded chunk; load it once here so the first test does not spend
// its wait on compiling it.
beforeAll(async () => {
  await import('../src/portal/console/Console.svelte');
});

/** A manager already signed in, the console open at `section`. */
async function signedIn(section?: string, clock = () => CLOCK) {
  const backend = new MemoryBackend(managerSeed(true));
  backend.signedIn = true;
  backend.admin.now = clock;
  render(Portal, { portal: new PortalState(backend), consoleOptions: { pollMs: 25, tickMs: 10, now: clock } });
  await screen.findByRole('navigation', { name: 'Console sections' });
  if (section) await fireEvent.click(screen.getByRole('button', { name: section }));
  return backend;
}

const rows = (table: HTMLElement) =>
  within(table)
    .getAllByRole('row')
    .slice(1)
    .map((r) => [...r.querySelectorAll('th, td')].map((c) => c.textContent?.trim()));

describe('manager sign-in', () => {
  it('sets up two-step sign-in with the QR code and secret, then shows the recovery codes once', async () => {
    const backend = new MemoryBackend(managerSeed(false));
    render(Portal, { portal: new PortalState(backend) });
    await fireEvent.input(await screen.findByLabelText('E-mail address'), { target: { value: 'morgan@acorn.example' } });
    await fireEvent.input(screen.getByLabelText('Password'), { target: { value: 'conkers and acorns' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));

    expect(await screen.findByRole('heading', { name: 'Set up two-step sign-in' })).toBeTruthy();
    const qr = screen.getByRole('img', { name: 'QR code for adding Sprig to an authenticator app' }) as HTMLImageElement;
    expect(qr.getAttribute('src')).toBe('blob:test');
    expect(screen.getByTestId('totp-secret').textContent).toBe('JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP');
    // The set-up takes the app's code, not a recovery code.
    expect(screen.queryByRole('button', { name: 'Use a recovery code instead' })).toBeNull();
    await expectAccessible();

    await fireEvent.input(screen.getByLabelText('2. Enter the 6-digit code the app now shows.'), { target: { value: '111111' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect((await screen.findByRole('alert')).textContent).toContain('That code is not right');

    await fireEvent.input(screen.getByLabelText('2. Enter the 6-digit code the app now shows.'), { target: { value: '246 810' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect(await screen.findByRole('heading', { name: 'Your recovery codes' })).toBeTruthy();
    const codes = within(screen.getByRole('list', { name: 'Your recovery codes' })).getAllByRole('listitem');
    expect(codes.map((c) => c.textContent?.trim())).toEqual(RECOVERY);
    expect(screen.queryByRole('navigation', { name: 'Console sections' })).toBeNull();
    await expectAccessible();

    await fireEvent.click(screen.getByRole('button', { name: 'I have saved these' }));
    expect(await screen.findByRole('navigation', { name: 'Console sections' })).toBeTruthy();
    expect(await screen.findByRole('heading', { name: 'Tablets', level: 1 })).toBeTruthy();
    // The codes are gone from the page and from the state.
    expect(screen.queryByText(RECOVERY[0]!)).toBeNull();
    expect(backend.calls).toContain('mfa 246 810');
  });

  it('signs a manager with TOTP in with a recovery code, once', async () => {
    const backend = new MemoryBackend(managerSeed(true));
    const portal = new PortalState(backend);
    render(Portal, { portal });
    await fireEvent.input(await screen.findByLabelText('E-mail address'), { target: { value: 'morgan@acorn.example' } });
    await fireEvent.input(screen.getByLabelText('Password'), { target: { value: 'conkers and acorns' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('heading', { name: 'Enter your code' })).toBeTruthy();
    await fireEvent.click(screen.getByRole('button', { name: 'Use a recovery code instead' }));
    await fireEvent.input(screen.getByLabelText('Recovery code'), { target: { value: 'A1B2-C3D4' } });
    await expectAccessible();
    await fireEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect(await screen.findByRole('navigation', { name: 'Console sections' })).toBeTruthy();
    expect(backend.seed.recoveryCodes).not.toContain('a1b2-c3d4');

    // Used once: the same code no longer signs in.
    await fireEvent.click(screen.getByRole('button', { name: 'Sign out' }));
    await fireEvent.input(await screen.findByLabelText('Password'), { target: { value: 'conkers and acorns' } });
    await fireEvent.input(screen.getByLabelText('E-mail address'), { target: { value: 'morgan@acorn.example' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await fireEvent.click(await screen.findByRole('button', { name: 'Use a recovery code instead' }));
    await fireEvent.input(screen.getByLabelText('Recovery code'), { target: { value: 'a1b2-c3d4' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect((await screen.findByRole('alert')).textContent).toContain('That code is not right');
  });
});

describe('tablets', () => {
  it('shows the register with badges and the missing flag, and follows changes while shown', async () => {
    const backend = await signedIn();
    const acorns = await screen.findByRole('listitem', { name: 'Acorns tablet' });
    expect(within(acorns).getByText('Active')).toBeTruthy();
    expect(within(acorns).getByTestId('unsynced-d-1').textContent).toBe('3 observations and 2 photos');
    const oaks = screen.getByRole('listitem', { name: 'Oaks tablet' });
    expect(within(oaks).getByText('Missing')).toBeTruthy();
    expect(within(oaks).getByRole('button', { name: 'Report missing and wipe' })).toBeTruthy();
    const old = screen.getByRole('listitem', { name: 'Old tablet' });
    expect(within(old).getByText('Quarantined')).toBeTruthy();
    expect(within(old).getByRole('button', { name: 'Release from quarantine' })).toBeTruthy();
    await expectAccessible();

    // The register is fetched again every few seconds.
    backend.admin.seed.devices[0]!.status = 'locked';
    backend.admin.seed.devices[0]!.unsynced_docs = 0;
    await waitFor(() => expect(within(screen.getByRole('listitem', { name: 'Acorns tablet' })).getByText('Locked')).toBeTruthy());
    expect(screen.getByTestId('unsynced-d-1').textContent).toBe('2 photos');
  });

  it('stops polling while the manager is away, so an idle session can expire, and resumes on request', async () => {
    let now = CLOCK;
    const backend = await signedIn(undefined, () => now);
    await screen.findByRole('listitem', { name: 'Acorns tablet' });
    let asked = 0;
    const devices = backend.admin.devices.bind(backend.admin);
    backend.admin.devices = () => ((asked += 1), devices());
    await waitFor(() => expect(asked).toBeGreaterThan(1));
    now = CLOCK + 11 * 60_000;
    expect((await screen.findByText('Live updates are paused while you are away.')).closest('[role="status"]')).toBeTruthy();
    const before = asked;
    await new Promise((r) => setTimeout(r, 150));
    expect(asked).toBe(before);
    await fireEvent.click(screen.getByRole('button', { name: 'Update now' }));
    await waitFor(() => expect(asked).toBeGreaterThan(before + 1));
    expect(screen.queryByText('Live updates are paused while you are away.')).toBeNull();
  });

  it('enrols a tablet: code, QR, address, fingerprint, a countdown, and the tablet as soon as it enrols', async () => {
    let now = CLOCK;
    const backend = await signedIn(undefined, () => now);
    await fireEvent.click(await screen.findByRole('button', { name: 'Enrol a tablet' }));
    const dialog = await screen.findByRole('dialog', { name: 'Enrol a tablet' });
    await fireEvent.input(within(dialog).getByLabelText('Tablet name'), { target: { value: 'Willows tablet' } });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Create enrolment code' }));

    expect((await within(dialog).findByTestId('enrol-code')).textContent).toBe('K7QM-4XRT-9WZB');
    expect(within(dialog).getByTestId('enrol-url').textContent).toBe('https://sprig.acorn.example:8443');
    expect(within(dialog).getByTestId('enrol-fingerprint').textContent).toBe('SHA256:9F:86:D0:81');
    expect((within(dialog).getByRole('img', { name: 'QR code for enrolling the tablet' }) as HTMLImageElement).src).toBe('blob:test');
    expect(within(dialog).getByTestId('enrol-countdown').textContent).toBe('Expires in 10:00');
    await expectAccessible();
    now = CLOCK + 61_000;
    await waitFor(() => expect(within(dialog).getByTestId('enrol-countdown').textContent).toBe('Expires in 8:59'));
    expect(backend.admin.calls).toContain('enrolCode Willows tablet');

    backend.admin.enrolTablet('d-9');
    expect(await within(dialog).findByText('Willows tablet has enrolled. It is in the register.')).toBeTruthy();
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Done' }));
    expect(await screen.findByRole('listitem', { name: 'Willows tablet' })).toBeTruthy();
  });

  it('says when an enrolment code has expired', async () => {
    let now = CLOCK;
    await signedIn(undefined, () => now);
    await fireEvent.click(await screen.findByRole('button', { name: 'Enrol a tablet' }));
    const dialog = await screen.findByRole('dialog', { name: 'Enrol a tablet' });
    await fireEvent.input(within(dialog).getByLabelText('Tablet name'), { target: { value: 'Willows tablet' } });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Create enrolment code' }));
    await within(dialog).findByTestId('enrol-code');
    now = CLOCK + 10 * 60_000;
    expect((await within(dialog).findByRole('alert')).textContent).toBe('This code has expired. Create a new one.');
    expect(within(dialog).queryByTestId('enrol-code')).toBeNull();
  });

  it('wipes only after a confirmation that counts the unsynced data and a fresh code', async () => {
    const backend = await signedIn();
    const acorns = await screen.findByRole('listitem', { name: 'Acorns tablet' });
    await fireEvent.click(within(acorns).getByRole('button', { name: 'Wipe' }));
    const dialog = await screen.findByRole('dialog', { name: 'Wipe Acorns tablet?' });
    expect(within(dialog).getByTestId('data-loss').textContent).toBe('This tablet has 3 observations and 2 photos not yet synced; wiping deletes them.');
    await expectAccessible();

    await fireEvent.input(within(dialog).getByLabelText('Code from your authenticator app'), { target: { value: '000000' } });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Wipe tablet' }));
    expect((await within(dialog).findByRole('alert')).textContent).toBe('Enter a current code from your authenticator app to confirm this.');
    expect(backend.admin.seed.devices[0]!.status).toBe('active');

    await fireEvent.input(within(dialog).getByLabelText('Code from your authenticator app'), { target: { value: '246810' } });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Wipe tablet' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(backend.admin.calls).toContain('wipe d-1 246810');
    expect(within(screen.getByRole('listitem', { name: 'Acorns tablet' })).getByText('Wipe pending')).toBeTruthy();
    expect(screen.getByRole('status').textContent).toBe('Acorns tablet: wipe pending.');
  });

  it('lets a tablet sync off site until a time, refusing a time in the past', async () => {
    const backend = await signedIn();
    const acorns = await screen.findByRole('listitem', { name: 'Acorns tablet' });
    await fireEvent.click(within(acorns).getByRole('button', { name: 'Allow off site' }));
    const dialog = await screen.findByRole('dialog', { name: 'Allow Acorns tablet off site' });
    const until = within(dialog).getByLabelText('Allowed until');
    // A local `datetime-local` value, days from the console's (fixed) clock.
    const local = (days: number) => {
      const d = new Date(CLOCK + days * 86_400_000);
      const p = (n: number) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T17:00`;
    };
    await fireEvent.input(until, { target: { value: local(-1) } });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Allow off site' }));
    expect((await within(dialog).findByRole('alert')).textContent).toBe('Choose a date and time in the future.');
    await expectAccessible();
    await fireEvent.input(until, { target: { value: local(2) } });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Allow off site' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    const sent = new Date(local(2)).toISOString();
    expect(backend.admin.calls).toContain(`offsite d-1 ${sent}`);
    expect(within(screen.getByRole('listitem', { name: 'Acorns tablet' })).getByText('Off site until')).toBeTruthy();
  });

  it('records a tablet checked out of the cupboard and back in it', async () => {
    const backend = await signedIn();
    const acorns = await screen.findByRole('listitem', { name: 'Acorns tablet' });
    await fireEvent.click(within(acorns).getByRole('button', { name: 'Checked out' }));
    await waitFor(() => expect(backend.admin.calls).toContain('custody d-1 checked_out'));
    expect(await screen.findByText('Acorns tablet is recorded as checked out.')).toBeTruthy();
    await fireEvent.click(within(acorns).getByRole('button', { name: 'Back in cupboard' }));
    await waitFor(() => expect(backend.admin.calls).toContain('custody d-1 returned'));
  });

  it('reports a missing tablet and wipes it; releases a quarantined one without a code', async () => {
    const backend = await signedIn();
    const oaks = await screen.findByRole('listitem', { name: 'Oaks tablet' });
    await fireEvent.click(within(oaks).getByRole('button', { name: 'Report missing and wipe' }));
    let dialog = await screen.findByRole('dialog', { name: 'Report Oaks tablet missing and wipe it?' });
    expect(within(dialog).getByTestId('data-loss').textContent).toBe('Everything on this tablet has been synced: nothing is lost.');
    await fireEvent.input(within(dialog).getByLabelText('Code from your authenticator app'), { target: { value: '246810' } });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Wipe tablet' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(backend.admin.calls).toContain('wipe d-2 246810');

    const old = screen.getByRole('listitem', { name: 'Old tablet' });
    await fireEvent.click(within(old).getByRole('button', { name: 'Release from quarantine' }));
    dialog = await screen.findByRole('dialog', { name: 'Release Old tablet from quarantine?' });
    expect(within(dialog).getByTestId('data-loss').textContent).toBe('This tablet has 1 observation not yet synced; they are uploaded at its next sync.');
    expect(within(dialog).queryByLabelText('Code from your authenticator app')).toBeNull();
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Release tablet' }));
    await waitFor(() => expect(backend.admin.calls).toContain('release d-3'));
    expect(await within(screen.getByRole('listitem', { name: 'Old tablet' })).findByText('Active')).toBeTruthy();
  });
});

describe('approvals', () => {
  it('lists observations the review gate holds back and puts one in the journal', async () => {
    const backend = await signedIn('Approvals');
    const list = await screen.findByRole('list', { name: 'Observations waiting for review' });
    expect(within(list).getByText('Ada and Bram built a bridge from blocks.')).toBeTruthy();
    expect(within(list).getByText('Ada Birchley, Bram Coldwell')).toBeTruthy();
    await expectAccessible();
    await fireEvent.click(within(list).getByRole('button', { name: 'Put in journal' }));
    await waitFor(() => expect(backend.admin.calls).toContain('review e-bridge'));
    expect(await screen.findByText('In the journal for Ada Birchley, Bram Coldwell’s parents.')).toBeTruthy();
    await waitFor(() => expect(screen.queryByRole('list', { name: 'Observations waiting for review' })).toBeNull());
  });

  it('shows a contribution with its photo, refuses a rejection without a reason, then rejects and approves', async () => {
    const backend = await signedIn('Approvals');
    expect(await screen.findByText('Ada planted bulbs in the garden.')).toBeTruthy();
    const photo = screen.getByRole('img', { name: 'Photo shared for Ada Birchley' }) as HTMLImageElement;
    expect(photo.getAttribute('src')).toBe('/api/v1/admin/media/m-bulbs');
    await expectAccessible();

    const [bulbs] = screen.getAllByRole('article');
    await fireEvent.click(within(bulbs!).getByRole('button', { name: 'Reject' }));
    const dialog = await screen.findByRole('dialog', { name: 'Reject this entry for Ada Birchley?' });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Reject entry' }));
    expect((await within(dialog).findByRole('alert')).textContent).toBe('Say why, so the parent knows what to change.');
    expect(backend.admin.calls.some((c) => c.startsWith('reject'))).toBe(false);
    await fireEvent.input(within(dialog).getByLabelText('Reason (the parent sees it)'), { target: { value: 'It shows another child' } });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Reject entry' }));
    await waitFor(() => expect(backend.admin.calls).toContain('reject k-1 It shows another child'));
    await waitFor(() => expect(screen.queryByText('Ada planted bulbs in the garden.')).toBeNull());

    await fireEvent.click(screen.getByRole('button', { name: 'Approve' }));
    await waitFor(() => expect(backend.admin.calls).toContain('approve k-2'));
    expect(await screen.findByText('Nothing is waiting for approval.')).toBeTruthy();
  });
});

describe('monitoring', () => {
  it('shows exactly the coverage figures in the tables beside the charts, for the period chosen', async () => {
    await signedIn('Monitoring');
    const perChild = await screen.findByRole('table', { name: 'Observations per child' });
    expect(rows(perChild).map((r) => [r[0], r[1]])).toEqual([
      ['Ada Birchley', '12'],
      ['Bram Coldwell', '3'],
      ['Dev Elmsworth', '0'],
    ]);
    expect(rows(screen.getByRole('table', { name: 'Observations per key worker' }))).toEqual([
      ['Amara Okafor', '9'],
      ['Morgan Hale', '6'],
    ]);
    expect(rows(screen.getByRole('table', { name: 'Observations per area of learning' }))).toEqual([
      ['Mathematics', '9'],
      ['Literacy', '6'],
      ['Physical development', '0'],
    ]);
    expect(rows(screen.getByRole('table', { name: 'Observations per day' }))).toEqual([
      ['30 Nov 2026', '6'],
      ['1 Dec 2026', '9'],
    ]);
    expect(rows(screen.getByRole('table', { name: 'Children not observed recently' }))).toEqual([['Dev Elmsworth', 'Never observed']]);
    const edits = rows(screen.getByRole('table', { name: 'Recent edits' }));
    expect(edits.map((r) => r.slice(1))).toEqual([['Ada Birchley, Bram Coldwell', 'Amara Okafor', 'Counted the conkers to twelve']]);
    expect(screen.getByTestId('waiting-review').textContent).toBe('6 entries waiting for review.');
    expect(screen.getByRole('img', { name: 'Observations per child' })).toBeTruthy();
    await expectAccessible();

    // The period picker is a radio group: arrow keys move the choice.
    const thirty = screen.getByRole('radio', { name: '30 days' });
    expect(thirty.getAttribute('tabindex')).toBe('0');
    await fireEvent.keyDown(thirty, { key: 'ArrowLeft' });
    expect(screen.getByRole('radio', { name: '7 days' }).getAttribute('aria-checked')).toBe('true');
    await waitFor(() => expect(rows(screen.getByRole('table', { name: 'Observations per key worker' }))).toEqual([
      ['Amara Okafor', '3'],
      ['Morgan Hale', '2'],
    ]));
    expect(screen.getByTestId('waiting-review').textContent).toBe('2 entries waiting for review.');
  });
});

describe('roster', () => {
  it('adds a child, changes a key worker and leaving date, and sends only what changed', async () => {
    const backend = await signedIn('Roster');
    const children = await screen.findByRole('table', { name: 'Children' });
    expect(rows(children)[0]).toEqual(['Ada Birchley', 'Acorns', 'Amara Okafor', '4 May 2022', 'Yes', 'Attending', 'Edit']);
    await expectAccessible();

    await fireEvent.click(screen.getByRole('button', { name: 'Edit Bram Coldwell' }));
    let dialog = await screen.findByRole('dialog', { name: 'Edit Bram Coldwell' });
    await fireEvent.change(within(dialog).getByLabelText('Key worker'), { target: { value: 's-amara' } });
    await fireEvent.change(within(dialog).getByLabelText('Photo consent (as recorded on paper)'), { target: { value: 'no' } });
    await fireEvent.input(within(dialog).getByLabelText('Leaving date'), { target: { value: '2027-07-23' } });
    await expectAccessible();
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(backend.admin.calls).toContain('changeChild c-bram {"key_worker":"s-amara","photo_consent":"no","leaving":"2027-07-23"}');
    expect(rows(screen.getByRole('table', { name: 'Children' }))[1]).toEqual(['Bram Coldwell', 'Oaks', 'Amara Okafor', '15 Jan 2022', 'No', 'Left', 'Edit']);

    await fireEvent.click(screen.getByRole('button', { name: 'Add a child' }));
    dialog = await screen.findByRole('dialog', { name: 'Add a child' });
    await fireEvent.input(within(dialog).getByLabelText('Name'), { target: { value: 'Esme Greyholt' } });
    await fireEvent.input(within(dialog).getByLabelText('Room'), { target: { value: 'Acorns' } });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Save' }));
    expect(await screen.findByRole('rowheader', { name: 'Esme Greyholt' })).toBeTruthy();
  });

  it('shows the server’s refusal when deactivating the last manager, and deactivates a practitioner', async () => {
    const backend = await signedIn('Roster');
    await fireEvent.click(await screen.findByRole('radio', { name: 'Staff' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Edit Morgan Hale' }));
    let dialog = await screen.findByRole('dialog', { name: 'Edit Morgan Hale' });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Deactivate…' }));
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Deactivate' }));
    expect((await within(dialog).findByRole('alert')).textContent).toBe('This is the last active manager. Make someone else a manager first.');
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Close' }));

    await fireEvent.click(screen.getByRole('button', { name: 'Edit Amara Okafor' }));
    dialog = await screen.findByRole('dialog', { name: 'Edit Amara Okafor' });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Deactivate…' }));
    expect(within(dialog).getByText(/PIN stops working on every tablet/)).toBeTruthy();
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Deactivate' }));
    await waitFor(() => expect(backend.admin.calls).toContain('changeStaff s-amara {"deactivate":true}'));
    expect(rows(await screen.findByRole('table', { name: 'Staff' }))[0]).toEqual(['Amara Okafor', 'Practitioner', '—', 'Deactivated', '']);
  });

  it('invites a parent, links a child, and unlinks only with a fresh code', async () => {
    const backend = await signedIn('Roster');
    await fireEvent.click(await screen.findByRole('radio', { name: 'Parents and relatives' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Invite a parent or relative' }));
    const invite = await screen.findByRole('dialog', { name: 'Invite a parent or relative' });
    await fireEvent.input(within(invite).getByLabelText('Name'), { target: { value: 'Sam Coldwell' } });
    await fireEvent.input(within(invite).getByLabelText('E-mail address'), { target: { value: 'sam@example.com' } });
    await fireEvent.click(within(invite).getByRole('button', { name: 'Make invitation link' }));
    expect((await within(invite).findByRole('alert')).textContent).toBe('Choose at least one child.');
    await fireEvent.click(within(invite).getByLabelText('Bram Coldwell'));
    await fireEvent.click(within(invite).getByRole('button', { name: 'Make invitation link' }));
    await waitFor(() => expect(backend.admin.calls).toContain('invite sam@example.com c-bram'));
    // The link is shown for the manager to give the parent.
    const made = await screen.findByRole('region', { name: 'Invitation link for Sam Coldwell' });
    const first = (within(made).getByLabelText('Invitation link') as HTMLInputElement).value;
    expect(first).toMatch(/\/#\/invite\/[0-9a-f]{64}$/);
    await expectAccessible();
    const sam = await screen.findByRole('listitem', { name: 'Sam Coldwell' });
    expect(within(sam).getByText('Invited, not signed up yet')).toBeTruthy();
    await fireEvent.click(within(sam).getByRole('button', { name: 'New invitation link' }));
    await waitFor(() => expect(backend.admin.calls).toContain('resend p2'));
    await waitFor(() =>
      expect((within(screen.getByRole('region', { name: 'Invitation link for Sam Coldwell' })).getByLabelText('Invitation link') as HTMLInputElement).value).not.toBe(first),
    );
    await fireEvent.click(screen.getByRole('button', { name: 'Done' }));
    expect(screen.queryByRole('region', { name: /Invitation link for/ })).toBeNull();

    const alex = screen.getByRole('listitem', { name: 'Alex Birchley' });
    await fireEvent.change(within(alex).getByLabelText('Link a child to Alex Birchley'), { target: { value: 'c-dev' } });
    await fireEvent.click(within(alex).getByRole('button', { name: 'Link' }));
    await waitFor(() => expect(backend.admin.calls).toContain('link p-alex c-dev'));
    await fireEvent.click(await within(screen.getByRole('listitem', { name: 'Alex Birchley' })).findByRole('button', { name: 'Unlink Ada Birchley' }));
    const dialog = await screen.findByRole('dialog', { name: 'Unlink Alex Birchley from Ada Birchley?' });
    await expectAccessible();
    await fireEvent.input(within(dialog).getByLabelText('Code from your authenticator app'), { target: { value: '999999' } });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Unlink' }));
    expect((await within(dialog).findByRole('alert')).textContent).toBe('Enter a current code from your authenticator app to confirm this.');
    await fireEvent.input(within(dialog).getByLabelText('Code from your authenticator app'), { target: { value: '246810' } });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Unlink' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(backend.admin.seed.parents[0]!.children).toEqual(['c-dev']);
  });
});

describe('audit and policy', () => {
  it('filters the audit log and offers the CSV with the same filter', async () => {
    const backend = await signedIn('Audit log');
    const table = await screen.findByRole('table', { name: 'Audit log' });
    expect(rows(table).map((r) => [r[1], r[2], r[3]])).toEqual([
      ['Morgan Hale', 'device.offsite', 'Acorns tablet'],
      ['admin', 'staff.add', '—'],
    ]);
    expect(screen.getByRole('link', { name: 'Download CSV' }).getAttribute('href')).toBe('/api/v1/admin/audit.csv');
    await expectAccessible();
    await waitFor(() => expect(screen.getAllByRole('option', { name: 'Acorns tablet' }).length).toBe(1));
    await fireEvent.change(screen.getByLabelText('Tablet'), { target: { value: 'd-1' } });
    await fireEvent.input(screen.getByLabelText('Action'), { target: { value: 'device.offsite' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Show' }));
    await waitFor(() => expect(rows(screen.getByRole('table', { name: 'Audit log' })).length).toBe(1));
    expect(backend.admin.calls).toContain('audit ?device=d-1&action=device.offsite');
    expect(screen.getByRole('link', { name: 'Download CSV' }).getAttribute('href')).toBe('/api/v1/admin/audit.csv?device=d-1&action=device.offsite');
  });

  it('opens a tablet’s custody log from the register: the audit log filtered to that tablet', async () => {
    const backend = await signedIn();
    const acorns = await screen.findByRole('listitem', { name: 'Acorns tablet' });
    await fireEvent.click(within(acorns).getByRole('button', { name: 'Custody log' }));
    const table = await screen.findByRole('table', { name: 'Audit log' });
    expect(rows(table).map((r) => r[2])).toEqual(['device.offsite']);
    expect(backend.admin.calls).toContain('audit ?device=d-1');
    await waitFor(() => expect((screen.getByLabelText('Tablet') as HTMLSelectElement).value).toBe('d-1'));
    expect(screen.getByRole('link', { name: 'Download CSV' }).getAttribute('href')).toBe('/api/v1/admin/audit.csv?device=d-1');
  });

  it('saves the policy in seconds and shows the server’s refusal', async () => {
    const backend = await signedIn('Policy');
    const lock = (await screen.findByLabelText('Lock after (hours without a sync)')) as HTMLInputElement;
    expect(lock.value).toBe('12');
    expect((screen.getByLabelText('Wipe after (days without a sync)') as HTMLInputElement).value).toBe('90');
    expect((screen.getByLabelText('Networks tablets may sync from') as HTMLTextAreaElement).value).toBe('192.168.1.0/24');
    await expectAccessible();
    await fireEvent.input(lock, { target: { value: '3000' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect((await screen.findByRole('alert')).textContent).toBe('Lock after must be shorter than wipe after.');
    await fireEvent.input(lock, { target: { value: '8' } });
    await fireEvent.input(screen.getByLabelText('Networks tablets may sync from'), { target: { value: '192.168.1.0/24\n10.0.0.0/8' } });
    await fireEvent.click(screen.getByLabelText(/wait for a manager’s review/));
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(backend.admin.seed.policy.lock_after_secs).toBe(28_800));
    expect(backend.admin.seed.policy.allow_networks).toEqual(['192.168.1.0/24', '10.0.0.0/8']);
    expect(backend.admin.seed.policy.review_gate).toBe(true);
  });
});

describe('console access', () => {
  it('opens the journal, not the console, for a parent', async () => {
    const seed = managerSeed(false);
    const backend = new MemoryBackend({
      ...seed,
      me: { id: 'p-alex', name: 'Alex Birchley', role: 'parent', totp_enabled: false, agreement_required: false, children: [{ id: 'c-ada', name: 'Ada', consent_required: false, photo_consent: true }] },
      journals: { 'c-ada': { child_name: 'Ada', entries: [] } },
    });
    backend.signedIn = true;
    render(Portal, { portal: new PortalState(backend) });
    expect(await screen.findByRole('heading', { name: 'Ada’s journal' })).toBeTruthy();
    expect(screen.queryByRole('navigation', { name: 'Console sections' })).toBeNull();
  });

  it('goes back to the sign-in when the manager’s session has ended', async () => {
    const backend = await signedIn();
    await screen.findByRole('listitem', { name: 'Acorns tablet' });
    // Signed out elsewhere (or idle for 15 minutes): every admin path now answers 404.
    backend.signedIn = false;
    backend.admin.devices = async () => {
      throw new PortalError(404, 'not_found', 'Not found.');
    };
    expect(await screen.findByRole('heading', { name: 'Sign in' })).toBeTruthy();
    expect(screen.getByRole('alert').textContent).toBe('You have been signed out. Please sign in again.');
  });
});
