// The manager's console in real Chromium (Debian's /usr/bin/chromium through playwright-core;
// nothing downloads a browser) against a real sprig-server on https://localhost, with headless
// tablets (sprig-device): the manager's first sign-in sets up two-step sign-in (the test reads
// the secret off the page and computes the codes itself, RFC 6238) and shows the recovery
// codes; a tablet enrolled with the code the page shows appears in the register; what it
// records moves the monitoring figures, exactly; a wipe confirmed with a fresh code reaches the
// tablet at its next sync; a parent's contribution approved in the console is approved for the
// parent; a deactivated member of staff's PIN stops working on a tablet once it has synced.
// axe runs on every page (no serious or critical violations); no page logs a CSP violation.
// Screenshots go to SPRIG_SCREENSHOTS (`make portal-screenshots` points it at
// docs/screenshots/), else to a temporary folder.
//
// Run by `make portal-e2e` (inside scripts/with-keystore.sh, for the tablets' keystore); the
// binaries come from SPRIG_SERVER_BIN and SPRIG_DEVICE_BIN.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import {
  PHONE, authenticator, expectAccessible, freePort, json, launchTrusting, need, screenshots, waitPort, watchCsp,
} from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const shots = process.env.SPRIG_SCREENSHOTS
  ? resolve(repo, process.env.SPRIG_SCREENSHOTS)
  : join(tmpdir(), 'sprig-console-screenshots');
const SERVER = need('SPRIG_SERVER_BIN');
const DEVICE = need('SPRIG_DEVICE_BIN');
const shot = screenshots(shots, 'console');

const work = mkdtempSync(join(tmpdir(), 'sprig-console-e2e-'));
const srv = join(work, 'server');
const tablets = { first: join(work, 'tablet-1'), second: join(work, 'tablet-2') };
const browserHome = join(work, 'home');
const procs = [];
const ids = {};
let base = '';
let browser;
/** The manager's browser context and page, which every step after the sign-in goes on with. */
let manager;
let page;
/** The manager's authenticator app, once the secret is read off the page. */
let app;
const cspViolations = [];

const MANAGER = { name: 'Mira Hallam', email: 'mira.hallam@example.org', password: 'a long console pass phrase' };
const PARENT = { email: 'sam.birchley@example.org', password: 'a long portal pass phrase' };

const server = (...args) => json(SERVER, args);
const device = (...args) => json(DEVICE, args);

/** Runs sprig-device expecting it to fail; its one-line message on stderr. */
function deviceFails(...args) {
  try {
    execFileSync(DEVICE, [...args, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    return String(e.stderr);
  }
  assert.fail(`sprig-device ${args[0]} succeeded, but it should have been refused`);
}

/** A table's body as rows of cell texts (the row heading first). */
const rows = (table) =>
  table.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent.trim())));

/** The monitoring table called `name`: its rows as [label, count] (the count as a number). */
async function counts(name) {
  const table = page.getByRole('table', { name });
  await table.waitFor();
  return (await rows(table)).map(([label, count]) => [label, Number(count)]);
}

/** Opens a section of the console from its navigation. */
async function section(name) {
  await page.getByRole('navigation', { name: 'Console sections' }).getByRole('button', { name, exact: true }).click();
  await page.getByRole('heading', { level: 1, name, exact: true }).waitFor();
}

/** The register's card of tablet `name`. */
const card = (name) => page.getByRole('listitem').filter({ has: page.getByRole('heading', { name, exact: true }) });

/**
 * Enrols a tablet from the console: the name, then the one-time code, address and fingerprint
 * read off the page and typed into `sprig-device enrol`; the sheet says so once the register
 * (the page polls it) has the new tablet. Returns the tablet's id.
 */
async function enrolFromConsole(name, data, shotName) {
  await page.getByRole('button', { name: 'Enrol a tablet' }).click();
  const sheet = page.getByRole('dialog', { name: 'Enrol a tablet' });
  await sheet.getByLabel('Tablet name').fill(name);
  await sheet.getByRole('button', { name: 'Create enrolment code' }).click();
  const qr = sheet.getByRole('img', { name: 'QR code for enrolling the tablet' });
  await qr.waitFor();
  await page.waitForFunction(() => {
    const i = document.querySelector('[data-testid="enrol-qr"]');
    return i && i.complete && i.naturalWidth > 0;
  });
  const code = (await sheet.getByTestId('enrol-code').textContent()).trim();
  const url = (await sheet.getByTestId('enrol-url').textContent()).trim();
  const fingerprint = (await sheet.getByTestId('enrol-fingerprint').textContent()).trim();
  assert.match(code, /^[A-Z0-9]{5}-[A-Z0-9]{5}$/, `the enrolment code on the page (${code})`);
  assert.equal(url, base, 'the page gives the server address the tablet should use');
  assert.equal(fingerprint, ids.fingerprint, 'the page gives the setting’s CA fingerprint');
  // The countdown to the code's expiry: under the 10 minutes a code lasts, and moving.
  const countdown = sheet.getByTestId('enrol-countdown');
  const first = (await countdown.textContent()).trim();
  const m = /^Expires in (\d+):(\d\d)$/.exec(first);
  assert.ok(m, `the countdown reads “Expires in m:ss” (it reads “${first}”)`);
  assert.ok(Number(m[1]) * 60 + Number(m[2]) <= 600, `the code expires within 10 minutes (${first})`);
  await page.waitForFunction(
    (was) => document.querySelector('[data-testid="enrol-countdown"]')?.textContent.trim() !== was,
    first,
    { timeout: 5000 },
  );
  await expectAccessible(page, `enrolment code for ${name}`);
  if (shotName) await shot(page, shotName);

  const enrolled = device('enrol', '--data', data, '--server', url, '--code', code, '--ca-fingerprint', fingerprint);
  // Shown without a reload: the sheet hears of it from the register the page keeps polling.
  await page.evaluate(() => (globalThis.__notReloaded = true));
  await sheet.getByRole('status').filter({ hasText: `${name} has enrolled` }).waitFor({ timeout: 15000 });
  assert.equal(await page.evaluate(() => globalThis.__notReloaded), true, 'the register showed the tablet without a reload');
  await sheet.getByRole('button', { name: 'Done' }).click();
  await card(name).getByText('Active', { exact: true }).waitFor();
  const id = await card(name).getAttribute('data-device');
  assert.ok(id, `the register's card of ${name} names its device`);
  if (enrolled.device_id) assert.equal(id, enrolled.device_id, 'the register shows the tablet that enrolled');
  return id;
}

before(async () => {
  const port = await freePort();
  base = `https://localhost:${port}`;
  ids.fingerprint = server('init', '--data', srv, '--name', 'Acorn Pre-School', '--hostname', 'localhost').ca_fingerprint;
  ids.manager = server('staff', 'add', '--data', srv, '--name', MANAGER.name, '--role', 'manager', '--pin', '1357',
    '--email', MANAGER.email, '--password', MANAGER.password).id;
  ids.amara = server('staff', 'add', '--data', srv, '--name', 'Amara Okafor', '--role', 'practitioner', '--pin', '2468').id;
  ids.ben = server('staff', 'add', '--data', srv, '--name', 'Ben Adeyemi', '--role', 'practitioner', '--pin', '8642').id;
  ids.ada = server('child', 'add', '--data', srv, '--name', 'Ada Birchley', '--key-worker', ids.amara, '--room', 'Acorns',
    '--photo-consent', 'yes').id;
  ids.bram = server('child', 'add', '--data', srv, '--name', 'Bram Coldwell', '--key-worker', ids.ben, '--room', 'Acorns',
    '--photo-consent', 'yes').id;
  ids.cleo = server('child', 'add', '--data', srv, '--name', 'Cleo Dunmore', '--key-worker', ids.amara, '--room', 'Acorns',
    '--photo-consent', 'yes').id;
  ids.parent = server('parent', 'add', '--data', srv, '--email', PARENT.email, '--name', 'Sam Birchley',
    '--password', PARENT.password, '--child', ids.ada).id;
  const p = spawn(SERVER, ['serve', '--data', srv, '--listen', `127.0.0.1:${port}`, '--public-url', base],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  procs.push(p);
  await waitPort(port);
  // The browser trusts the setting's CA, as the manager's laptop would be set up to.
  browser = await launchTrusting(join(srv, 'ca.pem'), browserHome);
});

after(async () => {
  await browser?.close();
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)))));
  rmSync(work, { recursive: true, force: true });
  console.log(`screenshots: ${shots} (${readdirSync(shots).filter((f) => f.startsWith('console-')).length})`);
});

test('1. the manager’s first sign-in sets up two-step sign-in and shows the recovery codes', async () => {
  manager = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await manager.newPage();
  watchCsp(page, cspViolations);
  const res = await page.goto(`${base}/`);
  assert.equal(res.status(), 200);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('E-mail address').fill(MANAGER.email);
  await page.getByLabel('Password').fill(MANAGER.password);
  await page.getByRole('button', { name: 'Sign in' }).click();

  // No second factor yet: the set-up, with the QR code and the key to type.
  await page.getByRole('heading', { name: 'Set up two-step sign-in' }).waitFor();
  await page.getByRole('img', { name: 'QR code for adding Sprig to an authenticator app' }).waitFor();
  await page.waitForFunction(() => {
    const i = document.querySelector('[data-testid="totp-qr"]');
    return i && i.complete && i.naturalWidth > 0;
  });
  const secret = (await page.getByTestId('totp-secret').textContent()).replace(/\s/g, '');
  assert.match(secret, /^[A-Z2-7]{32}$/, 'the key on the page is base32');
  app = authenticator(secret);
  // Half signed in: nothing of the console answers yet.
  const half = await page.evaluate(async () => (await fetch('/api/v1/admin/devices')).status);
  assert.equal(half, 404, 'the console answers nothing before the code');
  await expectAccessible(page, 'two-step set-up');
  await shot(page, '1-two-step-set-up');
  await page.getByLabel('2. Enter the 6-digit code the app now shows.').fill(await app.next());
  await page.getByRole('button', { name: 'Continue' }).click();

  // The recovery codes, once.
  await page.getByRole('heading', { name: 'Your recovery codes' }).waitFor();
  const codes = await page.getByRole('list', { name: 'Your recovery codes' }).getByRole('listitem').allTextContents();
  assert.equal(codes.length, 10, `ten recovery codes (${codes.length} shown)`);
  for (const c of codes) assert.match(c.trim(), /^[0-9a-z]{4}-[0-9a-z]{4}$/, `a recovery code looks like 3f7k-9q2m (${c})`);
  await expectAccessible(page, 'recovery codes');
  await shot(page, '2-recovery-codes');
  await page.getByRole('button', { name: 'I have saved these' }).click();

  // The console, at the register.
  await page.getByRole('heading', { level: 1, name: 'Tablets' }).waitFor();
  await page.getByText('No tablets are enrolled yet.').waitFor();
  const session = (await manager.cookies()).find((c) => c.name === '__Host-sprig-session');
  assert.ok(session?.secure && session.httpOnly && session.sameSite === 'Strict', 'the session cookie is Secure, HttpOnly, SameSite=Strict');
  await expectAccessible(page, 'empty register');
  await shot(page, '3-register-empty');
  assert.deepEqual(cspViolations, [], 'no CSP violations');
});

test('2. a tablet enrolled with the code the console shows appears in the register', async () => {
  ids.first = await enrolFromConsole('Acorns tablet', tablets.first, '4-enrol-code');
  const row = card('Acorns tablet');
  await row.getByText('Active', { exact: true }).waitFor();
  await expectAccessible(page, 'register with a tablet');
  await shot(page, '5-register');
  assert.deepEqual(cspViolations, [], 'no CSP violations');
});

test('3. what a tablet records moves the monitoring figures, exactly', async () => {
  await section('Monitoring');
  // Before: the children are all there, none observed.
  assert.deepEqual(await counts('Observations per child'), [['Ada Birchley', 0], ['Bram Coldwell', 0], ['Cleo Dunmore', 0]]);
  assert.deepEqual(await counts('Observations per area of learning'), []);
  await page.getByTestId('waiting-review').filter({ hasText: 'Nothing is waiting for review.' }).waitFor();

  // Three observations on the tablet, synced.
  device('sync', '--data', tablets.first); // the roster, before anyone can unlock
  const observe = (staff, pin, child, area, text) =>
    device('observe', '--data', tablets.first, '--staff', staff, '--pin', pin, '--child', child, '--area', area, '--text', text);
  observe(ids.amara, '2468', ids.ada, 'mathematics', 'Ada counted the conkers to twelve.');
  observe(ids.amara, '2468', ids.ada, 'physical-development', 'Ada balanced along the log.');
  observe(ids.ben, '8642', ids.bram, 'mathematics', 'Bram sorted the buttons by size.');
  device('sync', '--data', tablets.first);
  const status = device('status', '--data', tablets.first);
  assert.equal(status.unsynced_docs, 0, `the tablet's sync sent its observations (${JSON.stringify(status)})`);

  // The page's own figures, read again (a period chosen), match what was recorded.
  await page.getByRole('radio', { name: '7 days' }).click();
  await page.getByRole('radio', { name: '7 days', checked: true }).waitFor();
  await page.waitForFunction(
    () => [...document.querySelectorAll('table[aria-label="Observations per day"] tbody tr')].length === 7,
    undefined,
    { timeout: 10000 },
  );
  assert.deepEqual(await counts('Observations per child'), [['Ada Birchley', 2], ['Bram Coldwell', 1], ['Cleo Dunmore', 0]]);
  assert.deepEqual(await counts('Observations per key worker'), [['Amara Okafor', 2], ['Ben Adeyemi', 1]]);
  assert.deepEqual(await counts('Observations per area of learning'), [['Mathematics', 2], ['Physical development', 1]]);
  const perDay = await counts('Observations per day');
  assert.equal(perDay.length, 7, 'a row for each of the 7 days');
  assert.equal(perDay.reduce((n, [, c]) => n + c, 0), 3, `the days add up to the 3 observations (${JSON.stringify(perDay)})`);
  assert.deepEqual(await rows(page.getByRole('table', { name: 'Children not observed recently' })),
    [['Cleo Dunmore', 'Never observed']]);
  await expectAccessible(page, 'monitoring');
  await shot(page, '6-monitoring');
  assert.deepEqual(cspViolations, [], 'no CSP violations');
});

test('4. a wipe confirmed with a fresh code reaches the tablet at its next sync', async () => {
  await section('Tablets');
  const row = card('Acorns tablet');
  await row.getByRole('group', { name: 'Actions for Acorns tablet' }).getByRole('button', { name: 'Wipe', exact: true }).click();
  const sheet = page.getByRole('dialog', { name: 'Wipe Acorns tablet?' });
  await sheet.getByText('destroys its key and deletes everything it holds').waitFor();
  await sheet.getByTestId('data-loss').filter({ hasText: 'Everything on this tablet has been synced' }).waitFor();
  // Without a code the form does not go; the code the sign-in used is refused, with what to do.
  const field = sheet.getByLabel('Code from your authenticator app');
  await sheet.getByRole('button', { name: 'Wipe tablet' }).click();
  assert.equal(await field.evaluate((i) => i.validity.valueMissing), true, 'the code is asked for');
  await field.fill(app.last);
  await sheet.getByRole('button', { name: 'Wipe tablet' }).click();
  await sheet.getByRole('alert').filter({ hasText: 'not one used before' }).waitFor();
  await card('Acorns tablet').getByText('Active', { exact: true }).waitFor();
  await expectAccessible(page, 'wipe confirmation');
  await field.fill(await app.next());
  await shot(page, '7-wipe-confirm');
  await sheet.getByRole('button', { name: 'Wipe tablet' }).click();
  await sheet.waitFor({ state: 'detached' });
  const said = page.getByRole('status').filter({ hasText: 'Acorns tablet: wipe pending.' });
  await said.waitFor();
  await row.getByText('Wipe pending', { exact: true }).waitFor();

  // The tablet hears of it at its next sync, and wipes itself.
  const sync = device('sync', '--data', tablets.first);
  assert.equal(sync.wiped, true, `the tablet's sync reports the wipe (${JSON.stringify(sync)})`);
  assert.equal(device('status', '--data', tablets.first).wiped, true, 'the tablet is wiped');
  // The register (polled) says so.
  await row.getByText('Wiped', { exact: true }).waitFor({ timeout: 15000 });
  assert.equal(await row.getByRole('button', { name: 'Wipe', exact: true }).count(), 0, 'a wiped tablet cannot be wiped again');
  await said.waitFor({ state: 'detached' }); // the confirmation fades, so the picture shows the register alone
  await expectAccessible(page, 'register with a wiped tablet');
  await shot(page, '8-wiped');
  assert.deepEqual(cspViolations, [], 'no CSP violations');
});

test('5. a parent’s contribution approved in the console is approved for the parent', async () => {
  // The parent, on their phone, shares something from home.
  const home = await browser.newContext(PHONE);
  const phone = await home.newPage();
  watchCsp(phone, cspViolations);
  await phone.goto(`${base}/`);
  await phone.getByLabel('E-mail address').fill(PARENT.email);
  await phone.getByLabel('Password').fill(PARENT.password);
  await phone.getByRole('button', { name: 'Sign in' }).click();
  await phone.getByRole('heading', { name: 'Before you start' }).waitFor();
  await phone.getByRole('button', { name: 'I agree' }).click();
  await phone.getByRole('heading', { name: 'Ada Birchley’s journal' }).waitFor();
  await phone.getByRole('button', { name: 'Share from home' }).click();
  await phone.getByRole('heading', { name: 'Share from home: Ada Birchley' }).waitFor();
  await phone.getByLabel('What happened?').fill('We baked bread at the weekend; Ada kneaded the dough.');
  await phone.getByRole('button', { name: 'Send to staff' }).click();
  const mine = phone.getByRole('article').filter({ hasText: 'We baked bread at the weekend' });
  await mine.getByText('Waiting for staff').waitFor();

  // The manager approves it in the console.
  await section('Approvals');
  const item = page.getByRole('article', { name: 'Ada Birchley' });
  await item.getByText('We baked bread at the weekend; Ada kneaded the dough.').waitFor();
  await item.getByText(/^From Sam Birchley, /).waitFor();
  await expectAccessible(page, 'approvals');
  await shot(page, '9-approvals');
  await item.getByRole('button', { name: 'Approve' }).click();
  await page.getByRole('status').filter({ hasText: 'Added to Ada Birchley’s journal.' }).waitFor();
  await page.getByText('Nothing is waiting for approval.').waitFor();
  await expectAccessible(page, 'approvals, empty');
  await shot(page, '10-approved');

  // The parent's open page hears of it; their journal has it.
  await mine.getByText('In the journal').waitFor({ timeout: 15000 });
  await phone.getByRole('button', { name: 'Back to the journal' }).click();
  const entry = phone.getByRole('article').filter({ hasText: 'We baked bread at the weekend' });
  await entry.getByText('by You').waitFor();
  await expectAccessible(phone, 'parent’s journal with the approved contribution');
  await shot(phone, '11-parent-sees-approved');
  await home.close();
  assert.deepEqual(cspViolations, [], 'no CSP violations');
});

test('6. a member of staff deactivated in the console can no longer unlock a tablet once it has synced', async () => {
  // A second tablet (the first is wiped), on which Ben's PIN works.
  await section('Tablets');
  ids.second = await enrolFromConsole('Oaks tablet', tablets.second);
  device('sync', '--data', tablets.second);
  const before = device('children', '--data', tablets.second, '--staff', ids.ben, '--pin', '8642');
  assert.ok(JSON.stringify(before).includes('Bram Coldwell'), 'Ben unlocks the tablet with his PIN before');

  // Deactivated from the roster's staff list.
  await section('Roster');
  // The roster loads, or the page says why not (the server's sentence), which is the failure.
  const refusal = page.getByRole('main').getByRole('alert');
  await page.getByRole('radio', { name: 'Staff' }).click();
  await page.getByRole('table', { name: 'Staff' }).or(refusal).first().waitFor();
  if (await refusal.count()) assert.fail(`the roster did not load: ${await refusal.first().textContent()}`);
  const staff = page.getByRole('table', { name: 'Staff' });
  await staff.waitFor();
  const benRow = staff.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'Ben Adeyemi' }) });
  await benRow.getByText('Active', { exact: true }).waitFor();
  await expectAccessible(page, 'staff list');
  await shot(page, '12-staff');
  await benRow.getByRole('button', { name: 'Edit Ben Adeyemi' }).click();
  const sheet = page.getByRole('dialog', { name: 'Edit Ben Adeyemi' });
  await sheet.getByRole('button', { name: 'Deactivate…' }).click();
  await sheet.getByText('Ben Adeyemi’s PIN stops working on every tablet at its next sync.').waitFor();
  await expectAccessible(page, 'deactivation confirmation');
  await shot(page, '13-deactivate');
  await sheet.getByRole('button', { name: 'Deactivate', exact: true }).click();
  await sheet.waitFor({ state: 'detached' });
  await page.getByRole('status').filter({ hasText: 'Ben Adeyemi has been deactivated.' }).waitFor();
  await benRow.getByText('Deactivated', { exact: true }).waitFor();
  await shot(page, '14-deactivated');

  // Until the tablet syncs it knows nothing of it; after, Ben's PIN is refused.
  device('sync', '--data', tablets.second);
  const refused = deviceFails('children', '--data', tablets.second, '--staff', ids.ben, '--pin', '8642');
  assert.match(refused, /deactivated/, `Ben's PIN is refused as deactivated (${refused.trim()})`);
  // Amara, still active, unlocks it as before.
  const amara = device('children', '--data', tablets.second, '--staff', ids.amara, '--pin', '2468');
  assert.ok(JSON.stringify(amara).includes('Ada Birchley'), 'an active member of staff still unlocks the tablet');
  assert.deepEqual(cspViolations, [], 'no CSP violations');
});

test('the register on a phone', async () => {
  // The same session, on a phone-sized screen.
  const phone = await browser.newContext({ ...PHONE, storageState: await manager.storageState() });
  const p = await phone.newPage();
  watchCsp(p, cspViolations);
  await p.goto(`${base}/`);
  await p.getByRole('heading', { level: 1, name: 'Tablets' }).waitFor();
  await p.getByRole('heading', { name: 'Oaks tablet' }).waitFor();
  await p.getByRole('heading', { name: 'Acorns tablet' }).waitFor();
  await expectAccessible(p, 'register on a phone');
  await shot(p, '15-register-phone');
  await phone.close();
  await manager.close();
  assert.deepEqual(cspViolations, [], 'no CSP violations');
});
