import { readFileSync } from 'node:fs';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import Portal from '../src/portal/Portal.svelte';
import { MemoryBackend, type MemorySeed } from '../src/portal/backend/memory';
import { PortalState } from '../src/portal/state/portal.svelte';
import { docPath, generate, outPath } from '../scripts/portal-api.mjs';
import { expectAccessible } from './axe';

afterEach(() => cleanup());

const seed: MemorySeed = {
  email: 'alex@example.com',
  password: 'correct horse battery staple',
  me: {
    id: 'p1',
    name: 'Alex Lovelace',
    role: 'parent',
    agreement_required: true,
    totp_enabled: false,
    children: [{ id: 'c1', name: 'Ada', consent_required: true, photo_consent: null }],
  },
  totpCode: '123456',
  agreement: { version: '1', text: 'Please agree:\n\n- not to download or share anything.' },
  sessions: [
    { id: 's-here', current: true, signed_in_at: Date.UTC(2026, 11, 1), expires_at: Date.UTC(2026, 11, 2) },
    { id: 's-tablet', current: false, signed_in_at: Date.UTC(2026, 10, 28), expires_at: Date.UTC(2026, 11, 2) },
  ],
  journals: {
    c1: {
      child_name: 'Ada',
      entries: [
        {
          id: 'e1',
          created_at: Date.UTC(2026, 10, 30),
          text: 'Ada built a tall tower.',
          areas: ['mathematics'],
          next_step: 'Count the blocks together.',
          media: [{ id: 'abc', kind: 'photo', url: '/api/v1/media/abc' }],
          media_hidden: false,
          is_group: false,
          replies: [],
          author: 'Amara Okafor',
        },
      ],
    },
  },
};

describe('portal', () => {
  it('signs in, shows the agreement, asks consent, then the journal, and sends a reply', async () => {
    const backend = new MemoryBackend(seed);
    render(Portal, { portal: new PortalState(backend) });
    await fireEvent.input(await screen.findByLabelText('E-mail address'), { target: { value: 'alex@example.com' } });
    await fireEvent.input(screen.getByLabelText('Password'), { target: { value: 'wrong' } });
    await expectAccessible();
    await fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect((await screen.findByRole('alert')).textContent).toContain('do not match');
    await fireEvent.input(screen.getByLabelText('Password'), { target: { value: seed.password } });
    await fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));

    expect(await screen.findByRole('heading', { name: 'Before you start' })).toBeTruthy();
    expect(screen.getByText('not to download or share anything.')).toBeTruthy();
    await expectAccessible();
    await fireEvent.click(screen.getByRole('button', { name: 'I agree' }));

    expect(await screen.findByRole('heading', { name: 'Photo consent' })).toBeTruthy();
    await expectAccessible();
    await fireEvent.click(screen.getByRole('button', { name: 'Yes, that’s fine' }));
    expect(backend.calls).toContain('consent c1 true');

    expect(await screen.findByRole('heading', { name: 'Ada’s journal' })).toBeTruthy();
    expect(screen.getByText('Ada built a tall tower.')).toBeTruthy();
    const img = screen.getByRole('img', { name: /Photo from an observation of Ada/ }) as HTMLImageElement;
    expect(img.getAttribute('src')).toBe('/api/v1/media/abc');
    await expectAccessible();
    await fireEvent.input(screen.getByLabelText('Reply to this observation'), { target: { value: 'Lovely!' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Send reply' }));
    await waitFor(() => expect(backend.calls).toContain('reply e1 Lovely!'));
    expect(await screen.findByText('Lovely!', { exact: false })).toBeTruthy();

    await fireEvent.click(screen.getByRole('button', { name: 'Sign out' }));
    expect(await screen.findByRole('heading', { name: 'Sign in' })).toBeTruthy();
  });

  it('shows the account: changes the consent answer and signs out another device', async () => {
    const backend = new MemoryBackend({
      ...seed,
      me: { ...seed.me, agreement_required: false, children: [{ id: 'c1', name: 'Ada', consent_required: false, photo_consent: true }] },
    });
    backend.signedIn = true;
    render(Portal, { portal: new PortalState(backend) });
    await screen.findByRole('heading', { name: 'Ada’s journal' });
    await fireEvent.click(screen.getByRole('button', { name: 'Your account' }));
    expect(await screen.findByRole('heading', { name: 'Your account' })).toBeTruthy();
    expect(screen.getByTestId('consent-c1').textContent).toContain('may appear');
    await expectAccessible();
    await fireEvent.click(screen.getByRole('button', { name: 'No' }));
    await waitFor(() => expect(screen.getByTestId('consent-c1').textContent).toContain('must not appear'));
    expect(backend.calls).toContain('consent c1 false');
    expect(screen.getByRole('status').textContent).toContain('saved');
    await fireEvent.click(screen.getByRole('button', { name: 'Sign out there' }));
    await waitFor(() => expect(backend.calls).toContain('end s-tablet'));
    await waitFor(() => expect(screen.queryByRole('button', { name: 'Sign out there' })).toBeNull());
    expect(screen.getByRole('button', { name: 'Sign out here' })).toBeTruthy();
    await fireEvent.click(screen.getByRole('button', { name: 'Back to the journal' }));
    expect(await screen.findByRole('heading', { name: 'Ada’s journal' })).toBeTruthy();
  });

  it('shares from home with a photo, lists the outcomes with the reason, and refuses what the server refuses', async () => {
    const backend = new MemoryBackend({
      ...seed,
      me: { ...seed.me, agreement_required: false, children: [{ id: 'c1', name: 'Ada', consent_required: false, photo_consent: true }] },
      contributions: {
        c1: [{ id: 'k0', created_at: Date.UTC(2026, 10, 29), text: 'A photo from the park', status: 'rejected', reason: 'It shows another child', media: [] }],
      },
    });
    backend.signedIn = true;
    render(Portal, { portal: new PortalState(backend) });
    await screen.findByRole('heading', { name: 'Ada’s journal' });
    await fireEvent.click(screen.getByRole('button', { name: 'Share from home' }));
    expect(await screen.findByRole('heading', { name: 'Share from home: Ada' })).toBeTruthy();
    expect(screen.getByText('Not added')).toBeTruthy();
    expect(screen.getByText('It shows another child')).toBeTruthy();
    await expectAccessible();

    // Nothing chosen, nothing written: said at once, nothing sent.
    await fireEvent.click(screen.getByRole('button', { name: 'Send to staff' }));
    expect((await screen.findByRole('alert')).textContent).toContain('Write something');
    const picker = screen.getByLabelText('Photos and videos (optional)') as HTMLInputElement;
    expect(picker.getAttribute('accept')).toBe('image/*,video/*');
    expect(picker.multiple).toBe(true);

    // Too big: the server's refusal is shown, the form is kept.
    const big = new File([new Uint8Array(2 * 1024 * 1024)], 'long.mp4', { type: 'video/mp4' });
    await fireEvent.change(picker, { target: { files: [big] } });
    expect(screen.getByText('long.mp4')).toBeTruthy();
    await fireEvent.input(screen.getByLabelText('What happened?'), { target: { value: 'We baked bread' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Send to staff' }));
    expect((await screen.findByRole('alert')).textContent).toContain('too large');
    await fireEvent.click(screen.getByRole('button', { name: 'Remove long.mp4' }));

    const photo = new File([new Uint8Array([0xff, 0xd8, 0xff])], 'bread.jpg', { type: 'image/jpeg' });
    await fireEvent.change(picker, { target: { files: [photo] } });
    await fireEvent.click(screen.getByRole('button', { name: 'Send to staff' }));
    expect((await screen.findByRole('status')).textContent).toContain('Staff will look at it');
    expect(backend.calls).toContain('contribute c1 We baked bread 1');
    expect(screen.getByText('Waiting for staff')).toBeTruthy();
    await waitFor(() => expect((screen.getByLabelText('What happened?') as HTMLTextAreaElement).value).toBe(''));
    await expectAccessible();
    await fireEvent.click(screen.getByRole('button', { name: 'Back to the journal' }));
    expect(await screen.findByRole('heading', { name: 'Ada’s journal' })).toBeTruthy();
  });

  it('reloads the journal when the server says it changed', async () => {
    const backend = new MemoryBackend({
      ...seed,
      me: { ...seed.me, agreement_required: false, children: [{ id: 'c1', name: 'Ada', consent_required: false, photo_consent: true }] },
    });
    backend.signedIn = true;
    render(Portal, { portal: new PortalState(backend) });
    await screen.findByRole('heading', { name: 'Ada’s journal' });
    backend.seed.journals.c1!.entries.unshift({ ...backend.seed.journals.c1!.entries[0]!, id: 'e2', text: 'Ada painted a rainbow.' });
    backend.listener?.('other-child');
    backend.listener?.('c1');
    expect(await screen.findByText('Ada painted a rainbow.')).toBeTruthy();
  });

  it('sets a password from an invitation link, explaining the rule, then signs in', async () => {
    const token = 'ab'.repeat(32);
    const backend = new MemoryBackend({
      ...seed,
      invitations: { [token]: { name: 'Alex Lovelace', email: 'alex@example.com' } },
    });
    window.location.hash = `#/invite/${token}`;
    render(Portal, { portal: new PortalState(backend) });
    expect(await screen.findByRole('heading', { name: 'Choose your password' })).toBeTruthy();
    expect(screen.getByText(/Welcome, Alex Lovelace/)).toBeTruthy();
    expect(screen.getByText(/Use at least 12 characters/)).toBeTruthy();
    await expectAccessible();
    const field = screen.getByLabelText('New password');
    await fireEvent.input(field, { target: { value: 'too short' } });
    expect(screen.getByText('9 of at least 12 characters')).toBeTruthy();
    await fireEvent.click(screen.getByRole('button', { name: 'Set password' }));
    expect((await screen.findByRole('alert')).textContent).toContain('at least 12 characters');
    await fireEvent.input(field, { target: { value: 'password1234' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Set password' }));
    await waitFor(() => expect(screen.getByRole('alert').textContent).toContain('too common'));
    await fireEvent.input(field, { target: { value: 'tulip kettle orbit' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Set password' }));
    expect(await screen.findByRole('heading', { name: 'Sign in' })).toBeTruthy();
    expect(screen.getByRole('status').textContent).toContain('Your password is set');
    expect((screen.getByLabelText('E-mail address') as HTMLInputElement).value).toBe('alex@example.com');
    expect(window.location.hash).toBe('');
    await fireEvent.input(screen.getByLabelText('Password'), { target: { value: 'tulip kettle orbit' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('heading', { name: 'Before you start' })).toBeTruthy();
  });

  it('says so when an invitation link is used or expired', async () => {
    window.location.hash = `#/invite/${'cd'.repeat(32)}`;
    render(Portal, { portal: new PortalState(new MemoryBackend(seed)) });
    expect(await screen.findByRole('heading', { name: 'This link no longer works' })).toBeTruthy();
    await expectAccessible();
    await fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('heading', { name: 'Sign in' })).toBeTruthy();
    window.location.hash = '';
  });

  it('asks for the code after the password when two-step sign-in is on', async () => {
    const backend = new MemoryBackend({ ...seed, me: { ...seed.me, totp_enabled: true } });
    render(Portal, { portal: new PortalState(backend) });
    await fireEvent.input(await screen.findByLabelText('E-mail address'), { target: { value: 'alex@example.com' } });
    await fireEvent.input(screen.getByLabelText('Password'), { target: { value: seed.password } });
    await fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('heading', { name: 'Enter your code' })).toBeTruthy();
    await expectAccessible();
    await fireEvent.input(screen.getByLabelText('6-digit code'), { target: { value: '000000' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect((await screen.findByRole('alert')).textContent).toContain('not right');
    await fireEvent.input(screen.getByLabelText('6-digit code'), { target: { value: '123 456' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect(await screen.findByRole('heading', { name: 'Before you start' })).toBeTruthy();
    expect(backend.calls).toContain('mfa 123 456');
  });

  it('turns two-step sign-in on with a confirming code, and off with a current one', async () => {
    const backend = new MemoryBackend({
      ...seed,
      me: { ...seed.me, agreement_required: false, children: [{ id: 'c1', name: 'Ada', consent_required: false, photo_consent: true }] },
    });
    backend.signedIn = true;
    render(Portal, { portal: new PortalState(backend) });
    await screen.findByRole('heading', { name: 'Ada’s journal' });
    await fireEvent.click(screen.getByRole('button', { name: 'Your account' }));
    await fireEvent.click(await screen.findByRole('button', { name: 'Turn on two-step sign-in' }));
    expect((await screen.findByTestId('totp-secret')).textContent).toBe('JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP');
    await expectAccessible();
    await fireEvent.input(screen.getByLabelText(/Enter the 6-digit code/), { target: { value: '654321' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Turn on' }));
    expect((await screen.findByRole('alert')).textContent).toContain('not right');
    await fireEvent.input(screen.getByLabelText(/Enter the 6-digit code/), { target: { value: '123456' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Turn on' }));
    expect((await screen.findByRole('status')).textContent).toContain('Two-step sign-in is on');
    await fireEvent.input(screen.getByLabelText(/To turn it off/), { target: { value: '123456' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Turn off' }));
    await waitFor(() => expect(screen.getByRole('status').textContent).toContain('is off'));
    expect(backend.calls).toEqual(expect.arrayContaining(['totpStart', 'totpConfirm 123456', 'totpOff 123456']));
  });

  it('keeps the generated API types equal to the OpenAPI document', () => {
    const doc = JSON.parse(readFileSync(docPath, 'utf8'));
    expect(readFileSync(outPath, 'utf8')).toBe(generate(doc));
  });
});
