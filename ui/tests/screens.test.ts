import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '@testing-library/svelte';
import App from '../src/app/App.svelte';
import Capture from '../src/app/screens/Capture.svelte';
import Coverage from '../src/app/screens/Coverage.svelte';
import Journal from '../src/app/screens/Journal.svelte';
import Approvals from '../src/app/screens/Approvals.svelte';
import Enrol from '../src/app/screens/Enrol.svelte';
import Blocked from '../src/app/screens/Blocked.svelte';
import { expectAccessible } from './axe';
import { makeState, unlocked } from './fixture';

afterEach(() => cleanup());

describe('lock screen', () => {
  it('shows staff tiles, shakes on a wrong PIN with the attempts left, then unlocks', async () => {
    const { state } = makeState();
    render(App, { app: state });
    const tile = await screen.findByRole('button', { name: /Amara Okafor/ });
    await expectAccessible();
    await fireEvent.click(tile);
    expect(screen.getByRole('heading', { name: /Enter Amara Okafor’s PIN/ })).toBeTruthy();
    for (const d of '0000') await fireEvent.click(screen.getByRole('button', { name: `Digit ${d}` }));
    await fireEvent.click(screen.getByRole('button', { name: 'Unlock' }));
    const err = await screen.findByTestId('pin-error');
    expect(err.textContent).toContain('Wrong PIN.');
    expect(err.textContent).toContain('9 attempts left');
    await expectAccessible();
    for (const d of '2468') await fireEvent.click(screen.getByRole('button', { name: `Digit ${d}` }));
    await fireEvent.click(screen.getByRole('button', { name: 'Unlock' }));
    expect(await screen.findByRole('heading', { name: 'Hello, Amara' })).toBeTruthy();
  });

  it('counts down during the PIN back-off', async () => {
    const { state, backend } = makeState();
    backend.throttled = true;
    render(App, { app: state });
    await fireEvent.click(await screen.findByRole('button', { name: /Amara Okafor/ }));
    for (const d of '1234') await fireEvent.click(screen.getByRole('button', { name: `Digit ${d}` }));
    await fireEvent.click(screen.getByRole('button', { name: 'Unlock' }));
    expect((await screen.findByTestId('pin-wait')).textContent).toContain('Try again in 60 s');
    expect((screen.getByRole('button', { name: 'Digit 1' }) as HTMLButtonElement).disabled).toBe(true);
    await expectAccessible();
  });

  it('says "locked until this tablet syncs" with a Sync button', async () => {
    const { state, backend } = makeState({ maxPinFailures: 2 });
    backend.failures = 2;
    render(App, { app: state });
    expect(await screen.findByRole('heading', { name: 'Locked until this tablet syncs' })).toBeTruthy();
    await fireEvent.click(screen.getByRole('button', { name: 'Sync now' }));
    await waitFor(() => expect(backend.calls).toContain('sync'));
    expect(await screen.findByRole('button', { name: /Amara Okafor/ })).toBeTruthy();
    await expectAccessible();
  });
});

describe('home', () => {
  it('lists key children first, marks children not observed and counts pending contributions', async () => {
    const { state } = await unlocked();
    render(App, { app: state });
    const key = await screen.findByRole('heading', { name: 'Your key children' });
    expect(key).toBeTruthy();
    const cards = await screen.findAllByRole('button', { name: /Birchley|Coldwell|Elmsworth/ });
    expect(cards[0]!.textContent).toContain('Ada Birchley');
    expect(screen.getByRole('button', { name: /Dev Elmsworth/ }).textContent).toContain('Not observed for 14+ days');
    expect(screen.getByRole('button', { name: /Bram Coldwell/ }).textContent).toContain('1 contribution to review');
    await fireEvent.input(screen.getByLabelText('Search children'), { target: { value: 'bram' } });
    await waitFor(() => expect(screen.queryByRole('button', { name: /Ada Birchley/ })).toBeNull());
    await expectAccessible();
  });
});

describe('capture', () => {
  it('marks a child without consent on a photo, refuses the group photo, and saves once removed', async () => {
    const { state, backend } = await unlocked();
    await state.loadChildren();
    render(Capture, { app: state, preset: ['c-ada', 'c-dev'] });
    await expectAccessible();
    expect(screen.queryByTestId('no-consent')).toBeNull();
    const file = new File([new Uint8Array([0xff, 0xd8, 0xff, 0xd9])], 'p.jpg', { type: 'image/jpeg' });
    await fireEvent.change(screen.getByTestId('photo-file'), { target: { files: [file] } });
    expect(await screen.findByTestId('no-consent')).toBeTruthy();
    expect(screen.getByTestId('consent-refusal').textContent).toContain('Dev Elmsworth does not have photo consent');
    expect((screen.getByTestId('publish') as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.click(screen.getByRole('button', { name: 'Remove Dev Elmsworth' }));
    await fireEvent.input(screen.getByLabelText('What happened?'), { target: { value: 'Painted a rainbow' } });
    await fireEvent.click(screen.getByRole('button', { name: /PSED/ }));
    await fireEvent.click(screen.getByRole('radio', { name: '3 and 4-year-olds' }));
    await fireEvent.click(screen.getByTestId('publish'));
    await waitFor(() => expect(backend.seed.entries.some((e) => e.text === 'Painted a rainbow')).toBe(true));
    const saved = backend.seed.entries.find((e) => e.text === 'Painted a rainbow')!;
    expect(saved.areas).toEqual(['personal-social-emotional']);
    expect(saved.band).toBe('three-and-four-year-olds');
    expect(saved.media.length).toBe(1);
    expect(state.view.name).toBe('journal');
  });

  it('asks for a child and for something written', async () => {
    const { state } = await unlocked();
    render(Capture, { app: state, preset: [] });
    await fireEvent.click(screen.getByTestId('save-draft'));
    expect((await screen.findByTestId('capture-error')).textContent).toContain('Choose at least one child');
  });
});

describe('journal', () => {
  it('shows the timeline, opens an entry, publishes a draft and keeps revisions', async () => {
    const { state, backend } = await unlocked();
    await state.loadChildren();
    render(Journal, { app: state, child: state.children.find((c) => c.id === 'c-ada')! });
    const list = await screen.findByRole('list', { name: 'Ada Birchley’s journal' });
    const rows = within(list).getAllByRole('listitem');
    expect(rows.length).toBe(2);
    expect(rows[1]!.textContent).toContain('Draft');
    await expectAccessible();
    await fireEvent.click(within(rows[1]!).getByRole('button'));
    const dialog = await screen.findByRole('dialog');
    await fireEvent.click(within(dialog).getByTestId('publish-draft'));
    await waitFor(() => expect(backend.seed.entries.find((e) => e.id === 'e-2')!.status).toBe('published'));
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Edit' }));
    await fireEvent.input(within(dialog).getByLabelText('What happened?'), { target: { value: 'Dug a moat in the sandpit.' } });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Save changes' }));
    expect(await within(dialog).findByRole('button', { name: 'Earlier versions (1)' })).toBeTruthy();
    await expectAccessible();
  });

  it('renders only the visible rows of a year', async () => {
    const { state, backend } = await unlocked();
    for (let i = 0; i < 300; i++) {
      backend.seed.entries.push({ ...backend.seed.entries[0]!, id: `y-${i}`, created_at: i });
    }
    await state.loadChildren();
    render(Journal, { app: state, child: state.children.find((c) => c.id === 'c-ada')! });
    const list = await screen.findByRole('list');
    const rows = within(list).getAllByRole('listitem');
    expect(rows.length).toBeLessThan(30);
    expect(rows[0]!.getAttribute('aria-setsize')).toBe('302');
  });
});

describe('approvals', () => {
  it('approves or turns down with a reason', async () => {
    const { state, backend } = await unlocked();
    await state.loadChildren();
    render(Approvals, { app: state });
    const item = await screen.findByTestId('contribution');
    expect(item.textContent).toContain('We baked bread at home.');
    await expectAccessible();
    await fireEvent.click(within(item).getByRole('button', { name: 'Turn down' }));
    const dialog = await screen.findByRole('dialog');
    await fireEvent.input(within(dialog).getByLabelText('Reason (the parent sees this)'), { target: { value: 'It shows another child' } });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Turn down' }));
    await waitFor(() => expect(backend.seed.entries.find((e) => e.id === 'e-3')!.status).toBe('rejected'));
    expect(await screen.findByText(/Nothing to review/)).toBeTruthy();
  });
});

describe('coverage', () => {
  it('shows charts with tables and the children not observed', async () => {
    const { state } = await unlocked('s-morgan', '1357');
    render(Coverage, { app: state });
    const table = await screen.findByTestId('not-observed');
    expect(table.textContent).toContain('Dev Elmsworth');
    expect(screen.getByRole('img', { name: 'Observations per area of learning' })).toBeTruthy();
    await fireEvent.click(screen.getByRole('radio', { name: '90 days' }));
    await expectAccessible();
  });
});

describe('enrol', () => {
  it('shows the setting when the fingerprint matches and a message per refused code', async () => {
    const { state } = makeState({ enrolled: false });
    await state.refresh();
    render(Enrol, { app: state });
    await fireEvent.input(screen.getByLabelText('Server address'), { target: { value: 'https://sprig.local:8443' } });
    await fireEvent.input(screen.getByLabelText('Certificate fingerprint'), { target: { value: 'sha256:' + 'a'.repeat(64) } });
    expect((await screen.findByTestId('fingerprint-match')).textContent).toContain('This is Acorn Pre-School');
    await fireEvent.input(screen.getByLabelText('Enrolment code'), { target: { value: 'USED0-USED0' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Enrol this tablet' }));
    expect((await screen.findByTestId('enrol-error')).textContent).toContain('already been used');
    await fireEvent.input(screen.getByLabelText('Enrolment code'), { target: { value: 'OLD00-OLD00' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Enrol this tablet' }));
    await waitFor(() => expect(screen.getByTestId('enrol-error').textContent).toContain('expired'));
    await fireEvent.input(screen.getByLabelText('Or paste an enrolment link'), { target: { value: 'sprig://enrol?url=https%3A%2F%2Fa%3A1&code=GOOD0-GOOD0&fp=sha256%3Ab' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Use link' }));
    expect((screen.getByLabelText('Enrolment code') as HTMLInputElement).value).toBe('GOOD0-GOOD0');
    await expectAccessible();
  });
});

describe('full-screen states', () => {
  for (const kind of ['revoked', 'wiped', 'quarantined', 'lease_expired'] as const) {
    it(`${kind} says what happened and what to do`, async () => {
      const { state, backend } = makeState();
      backend.blocked = { kind, detail: '', can_sync: kind === 'lease_expired' || kind === 'quarantined', can_enrol: kind === 'wiped' };
      await state.refresh();
      render(Blocked, { app: state });
      expect(screen.getByRole('heading', { level: 1 }).textContent!.length).toBeGreaterThan(5);
      await expectAccessible();
    });
  }
});
