// The parents' portal in real Chromium (Debian's /usr/bin/chromium through playwright-core;
// nothing downloads a browser) against a real sprig-server on https://localhost, with a photo
// recorded and synced by a headless tablet (sprig-device): sign in, agreement, photo consent,
// the journal with the photo, a reply that reaches the tablet at its next sync, the account
// page (consent answer, sessions); then live updates (an entry a tablet publishes appears on
// the open page) and a contribution from home with a photo: pending, approved on the tablet,
// then in the journal; an invitation from `parent invite` (set the password, with a
// common one refused, then sign in) and two-step sign-in turned on and used (the test computes
// the codes itself, RFC 6238). axe runs on
// every page (no serious or critical violations); no page logs a CSP violation. Screenshots go
// to SPRIG_SCREENSHOTS (`make portal-screenshots` points it at docs/screenshots/), else to a
// temporary folder.
//
// Run by `make portal-e2e` (inside scripts/with-keystore.sh, for the tablet's keystore); the
// binaries come from SPRIG_SERVER_BIN and SPRIG_DEVICE_BIN.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import {
  PHONE, expectAccessible, freePort, json, launchTrusting, need, screenshots, sleep, totp, waitPort, watchCsp,
} from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const shots = process.env.SPRIG_SCREENSHOTS
  ? resolve(repo, process.env.SPRIG_SCREENSHOTS)
  : join(tmpdir(), 'sprig-portal-screenshots');
const SERVER = need('SPRIG_SERVER_BIN');
const DEVICE = need('SPRIG_DEVICE_BIN');
const shot = screenshots(shots, 'portal');

const work = mkdtempSync(join(tmpdir(), 'sprig-portal-e2e-'));
const srv = join(work, 'server');
const tablet = join(work, 'tablet');
const browserHome = join(work, 'home');
const procs = [];
const ids = {};
let port = 0;
let base = '';
let browser;
const cspViolations = [];

const server = (...args) => json(SERVER, args);
const device = (...args) => json(DEVICE, args);

before(async () => {
  port = await freePort();
  base = `https://localhost:${port}`;
  const fp = server('init', '--data', srv, '--name', 'Acorn Pre-School', '--hostname', 'localhost').ca_fingerprint;
  ids.amara = server('staff', 'add', '--data', srv, '--name', 'Amara Okafor', '--role', 'practitioner', '--pin', '2468').id;
  // Ada's photo-consent question is unanswered: her parent answers it in the portal.
  ids.ada = server('child', 'add', '--data', srv, '--name', 'Ada Birchley', '--key-worker', ids.amara, '--room', 'Acorns').id;
  ids.parent = server('parent', 'add', '--data', srv, '--email', 'sam.birchley@example.org', '--name', 'Sam Birchley',
    '--password', 'a long portal pass phrase', '--child', ids.ada).id;
  // Bram's parent is invited instead: no password until they choose one from the link.
  ids.bram = server('child', 'add', '--data', srv, '--name', 'Bram Coldwell', '--key-worker', ids.amara, '--room', 'Acorns',
    '--photo-consent', 'yes').id;
  ids.invite = server('parent', 'invite', '--data', srv, '--email', 'priya.coldwell@example.org', '--name', 'Priya Coldwell',
    '--child', ids.bram);
  const p = spawn(SERVER, ['serve', '--data', srv, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  procs.push(p);
  await waitPort(port);

  // The tablet: enrol, sync the roster, record an observation with a photo, sync it.
  const code = server('enrol-code', '--data', srv, '--device-name', 'Acorns tablet').code;
  device('enrol', '--data', tablet, '--server', base, '--code', code, '--ca-fingerprint', fp);
  device('sync', '--data', tablet); // the staff list, before anyone can unlock
  execFileSync('convert', ['-size', '1200x900', 'plasma:fractal', '-seed', '11', join(work, 'photo.jpg')]);
  ids.entry = device('observe', '--data', tablet, '--staff', ids.amara, '--pin', '2468', '--child', ids.ada,
    '--area', 'mathematics', '--text', 'Ada counted the conkers to twelve.', '--next-step', 'Count back from ten.',
    '--photo', join(work, 'photo.jpg')).id;
  device('sync', '--data', tablet);

  // The browser trusts the setting's CA, as a parent's phone would be set up to.
  browser = await launchTrusting(join(srv, 'ca.pem'), browserHome);
});

after(async () => {
  await browser?.close();
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)))));
  rmSync(work, { recursive: true, force: true });
  console.log(`screenshots: ${shots} (${readdirSync(shots).filter((f) => f.startsWith('portal-')).length})`);
});

test('a parent signs in, agrees, answers consent and sees the photo from the tablet, then replies', async () => {
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  watchCsp(page, cspViolations);
  const res = await page.goto(`${base}/`);
  assert.equal(res.status(), 200);
  const csp = res.headers()['content-security-policy'];
  assert.match(csp, /default-src 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);

  // Sign in.
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await expectAccessible(page, 'sign-in');
  await shot(page, '1-sign-in');
  await page.getByLabel('E-mail address').fill('sam.birchley@example.org');
  await page.getByLabel('Password').fill('not the right one');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'do not match' }).waitFor();
  await page.getByLabel('Password').fill('a long portal pass phrase');
  await page.getByRole('button', { name: 'Sign in' }).click();

  // The agreement, first.
  await page.getByRole('heading', { name: 'Before you start' }).waitFor();
  const session = (await context.cookies()).find((c) => c.name === '__Host-sprig-session');
  assert.ok(session, 'the session cookie is set');
  assert.equal(session.secure, true);
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  await page.getByText('not download, copy, screenshot or share').waitFor();
  await expectAccessible(page, 'agreement');
  await shot(page, '2-agreement');
  // Nothing else is reachable yet: the journal answers agreement_required.
  const early = await page.evaluate(async (child) => (await fetch(`/api/v1/children/${child}/journal`)).json(), ids.ada);
  assert.equal(early.code, 'agreement_required');
  await page.getByRole('button', { name: 'I agree' }).click();

  // Photo consent, before the link takes effect.
  await page.getByRole('heading', { name: 'Photo consent' }).waitFor();
  await page.getByText('May Ada Birchley’s photo appear').waitFor();
  await expectAccessible(page, 'consent');
  await shot(page, '3-consent');
  await page.getByRole('button', { name: 'Yes, that’s fine' }).click();

  // The journal, with the photo the tablet synced.
  await page.getByRole('heading', { name: 'Ada Birchley’s journal' }).waitFor();
  await page.getByText('Ada counted the conkers to twelve.').waitFor();
  const img = page.getByRole('img', { name: /Photo from an observation of Ada Birchley/ });
  await img.waitFor();
  await page.waitForFunction(() => {
    const i = document.querySelector('img.photo');
    return i && i.complete && i.naturalWidth > 0;
  });
  const width = await img.evaluate((i) => i.naturalWidth);
  assert.ok(width >= 600, `the photo loaded (${width} px wide)`);
  const src = await img.getAttribute('src');
  const media = await page.evaluate(async (u) => {
    const r = await fetch(u);
    return { status: r.status, cache: r.headers.get('cache-control'), type: r.headers.get('content-type') };
  }, src);
  assert.deepEqual(media, { status: 200, cache: 'no-store', type: 'image/jpeg' });
  await expectAccessible(page, 'journal');
  await shot(page, '4-journal');

  // A reply, which reaches the tablet at its next sync.
  await page.getByLabel('Reply to this observation').fill('Ada counted the stairs at home too!');
  await page.getByRole('button', { name: 'Send reply' }).click();
  await page.getByRole('status').filter({ hasText: 'Reply sent.' }).waitFor();
  await page.getByText('Ada counted the stairs at home too!').waitFor();
  await shot(page, '5-reply');
  device('sync', '--data', tablet);
  const onTablet = device('journal', '--data', tablet, '--staff', ids.amara, '--pin', '2468', '--child', ids.ada);
  assert.match(JSON.stringify(onTablet), /Ada counted the stairs at home too!/);

  // The account page: the consent answer (changeable) and where the parent is signed in.
  await page.getByRole('button', { name: 'Your account' }).click();
  await page.getByRole('heading', { name: 'Where you are signed in' }).waitFor();
  await page.getByText('photos may appear in other children’s journals').waitFor();
  await page.getByRole('button', { name: 'Sign out here' }).waitFor();
  await expectAccessible(page, 'account');
  await shot(page, '6-account');
  await page.getByRole('button', { name: 'Back to the journal' }).click();
  await page.getByRole('heading', { name: 'Ada Birchley’s journal' }).waitFor();

  // Sign out ends the session on the server.
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  const after = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
  assert.equal(after, 401);

  assert.deepEqual(cspViolations, [], 'no CSP violations');
  await context.close();
});

test('live updates, and a contribution from home that a tablet approves into the journal', async () => {
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  watchCsp(page, cspViolations);
  await page.goto(`${base}/`);
  await page.getByLabel('E-mail address').fill('sam.birchley@example.org');
  await page.getByLabel('Password').fill('a long portal pass phrase');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Ada Birchley’s journal' }).waitFor();
  // The page opens its event stream as the journal shows; give it a moment to connect.
  await sleep(1500);

  // Live update: a tablet publishes an entry; the open page shows it without a reload.
  const marker = await page.evaluate(() => (globalThis.__notReloaded = true));
  assert.equal(marker, true);
  device('observe', '--data', tablet, '--staff', ids.amara, '--pin', '2468', '--child', ids.ada,
    '--area', 'physical-development', '--text', 'Ada jumped in every puddle on the way in.');
  device('sync', '--data', tablet);
  await page.getByText('Ada jumped in every puddle on the way in.').waitFor({ timeout: 15000 });
  assert.equal(await page.evaluate(() => globalThis.__notReloaded), true, 'shown without a reload');
  await shot(page, '7-live-update');

  // Share from home: text and a photo.
  await page.getByRole('button', { name: 'Share from home' }).click();
  await page.getByRole('heading', { name: 'Share from home: Ada Birchley' }).waitFor();
  await page.getByText('Nothing yet.').waitFor();
  await expectAccessible(page, 'share');
  await shot(page, '8-share');
  execFileSync('convert', ['-size', '800x600', 'plasma:fractal', '-seed', '23', join(work, 'home.jpg')]);
  await page.getByLabel('What happened?').fill('We baked bread at the weekend; Ada kneaded the dough.');
  await page.getByLabel('Photos and videos (optional)').setInputFiles(join(work, 'home.jpg'));
  await page.getByText('home.jpg').waitFor();
  // A file that is not a photo is refused by the server with a sentence to act on.
  writeFileSync(join(work, 'notes.jpg'), '<html>not a photo</html>');
  await page.getByLabel('Photos and videos (optional)').setInputFiles(join(work, 'notes.jpg'));
  await page.getByRole('button', { name: 'Send to staff' }).click();
  await page.getByRole('alert').filter({ hasText: 'Only photos' }).waitFor();
  await shot(page, '9-share-refused');
  await page.getByRole('button', { name: 'Remove notes.jpg' }).click();
  await page.getByRole('button', { name: 'Send to staff' }).click();
  await page.getByRole('status').filter({ hasText: 'Staff will look at it soon' }).waitFor();
  const mine = page.getByRole('article').filter({ hasText: 'We baked bread at the weekend' });
  await mine.getByText('Waiting for staff').waitFor();
  await page.waitForFunction(() => {
    const i = document.querySelector('.share img.photo');
    return i && i.complete && i.naturalWidth > 0;
  });
  // Pending: not in the journal yet.
  const journal = await page.evaluate(async (child) => (await fetch(`/api/v1/children/${child}/journal`)).json(), ids.ada);
  assert.ok(!JSON.stringify(journal).includes('We baked bread'), 'a pending contribution is not in the journal');
  await expectAccessible(page, 'share-pending');
  await shot(page, '10-share-pending');

  // The tablet receives it, a member of staff approves it, the tablet syncs.
  device('sync', '--data', tablet);
  const pending = device('pending', '--data', tablet, '--staff', ids.amara, '--pin', '2468');
  const contribution = pending.find((p) => p.text.includes('We baked bread'));
  assert.ok(contribution, 'the tablet lists the contribution for review');
  device('approve', '--data', tablet, '--staff', ids.amara, '--pin', '2468', '--entry', contribution.id);
  device('sync', '--data', tablet);

  // The open page hears of it: approved, then in the journal.
  await mine.getByText('In the journal').waitFor({ timeout: 15000 });
  await shot(page, '11-share-approved');

  // A second one, which staff turn down with a reason: the parent sees both, it stays out.
  await page.getByLabel('What happened?').fill('Ada’s drawing of her cousins at the party.');
  await page.getByRole('button', { name: 'Send to staff' }).click();
  const second = page.getByRole('article').filter({ hasText: 'drawing of her cousins' });
  await second.getByText('Waiting for staff').waitFor();
  device('sync', '--data', tablet);
  const toReject = device('pending', '--data', tablet, '--staff', ids.amara, '--pin', '2468')
    .find((p) => p.text.includes('drawing of her cousins'));
  assert.ok(toReject, 'the tablet lists the second contribution');
  device('reject', '--data', tablet, '--staff', ids.amara, '--pin', '2468', '--entry', toReject.id,
    '--reason', 'It names other children; please send it without their names.');
  device('sync', '--data', tablet);
  await second.getByText('Not added').waitFor({ timeout: 15000 });
  await second.getByText('It names other children; please send it without their names.').waitFor();
  await expectAccessible(page, 'share-rejected');
  await page.getByRole('button', { name: 'Back to the journal' }).click();
  await page.getByRole('heading', { name: 'Ada Birchley’s journal' }).waitFor();
  const entry = page.getByRole('article').filter({ hasText: 'We baked bread at the weekend' });
  await entry.waitFor();
  await entry.getByText('by You').waitFor();
  assert.equal(await page.getByText('drawing of her cousins').count(), 0, 'a rejected contribution is not in the journal');
  await expectAccessible(page, 'journal-with-contribution');
  await shot(page, '12-journal-contribution');

  assert.deepEqual(cspViolations, [], 'no CSP violations');
  await context.close();
});

test('an invited parent sets a password, signs in, turns on two-step sign-in and signs in with a code', async () => {
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  watchCsp(page, cspViolations);
  // The printed link, on this test's port.
  assert.match(ids.invite.link, /\/#\/invite\/[0-9a-f]{64}$/);
  const token = ids.invite.link.split('/#/invite/')[1];
  await page.goto(`${base}/#/invite/${token}`);
  await page.getByRole('heading', { name: 'Choose your password' }).waitFor();
  await page.getByText('Welcome, Priya Coldwell.').waitFor();
  await page.getByText('You will sign in with priya.coldwell@example.org.').waitFor();
  await expectAccessible(page, 'invitation');
  await shot(page, '13-invitation');
  // A common password (long enough) is refused, with what to do.
  await page.getByLabel('New password').fill('1qaz2wsx3edc');
  await page.getByRole('button', { name: 'Set password' }).click();
  await page.getByRole('alert').filter({ hasText: 'too common' }).waitFor();
  await expectAccessible(page, 'invitation refused');
  await shot(page, '14-invitation-refused');
  // Pasting is allowed: nothing on the page refuses a paste into the field.
  await page.getByLabel('New password').fill('');
  await page.getByLabel('New password').focus();
  const pasteRefused = await page.evaluate(() => {
    const dt = new DataTransfer();
    dt.setData('text/plain', 'kettle tulip orbit meadow');
    const e = new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true });
    document.activeElement.dispatchEvent(e);
    return e.defaultPrevented;
  });
  assert.equal(pasteRefused, false);
  await page.getByLabel('New password').fill('kettle tulip orbit meadow');
  await page.getByRole('button', { name: 'Set password' }).click();
  await page.getByRole('status').filter({ hasText: 'Your password is set' }).waitFor();
  assert.equal(await page.getByLabel('E-mail address').inputValue(), 'priya.coldwell@example.org');
  // The link is used up.
  const again = await page.evaluate(async (t) => (await fetch(`/api/v1/invitations/${t}`)).status, token);
  assert.equal(again, 404);
  await page.getByLabel('Password').fill('kettle tulip orbit meadow');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Before you start' }).waitFor();
  await page.getByRole('button', { name: 'I agree' }).click();
  await page.getByRole('heading', { name: 'Bram Coldwell’s journal' }).waitFor();

  // Two-step sign-in: set up from the account page.
  await page.getByRole('button', { name: 'Your account' }).click();
  await page.getByRole('button', { name: 'Turn on two-step sign-in' }).click();
  const qr = page.getByRole('img', { name: 'QR code for adding Sprig to an authenticator app' });
  await qr.waitFor();
  await page.waitForFunction(() => {
    const i = document.querySelector('img.qr');
    return i && i.complete && i.naturalWidth > 0;
  });
  const secret = (await page.getByTestId('totp-secret').textContent()).replace(/\s/g, '');
  assert.match(secret, /^[A-Z2-7]{32}$/);
  await expectAccessible(page, 'two-step set-up');
  await shot(page, '15-two-step-set-up');
  await page.getByLabel('2. Enter the 6-digit code the app now shows.').fill(totp(secret));
  await page.getByRole('button', { name: 'Turn on', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'Two-step sign-in is on' }).waitFor();
  await page.getByText('On: signing in asks for a code').waitFor();
  await expectAccessible(page, 'two-step on');
  await shot(page, '16-two-step-on');

  // Signing in now takes a code: half signed in until then.
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('E-mail address').fill('priya.coldwell@example.org');
  await page.getByLabel('Password').fill('kettle tulip orbit meadow');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Enter your code' }).waitFor();
  const half = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
  assert.equal(half, 401);
  await expectAccessible(page, 'code step');
  await shot(page, '17-code');
  // The set-up's code was used; a wrong one is refused; the next step's code signs in.
  await page.getByLabel('6-digit code').fill(totp(secret) === '000000' ? '111111' : '000000');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('alert').filter({ hasText: 'not right' }).waitFor();
  await page.getByLabel('6-digit code').fill(totp(secret, Date.now() + 30000));
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: 'Bram Coldwell’s journal' }).waitFor();

  assert.deepEqual(cspViolations, [], 'no CSP violations');
  await context.close();
});
