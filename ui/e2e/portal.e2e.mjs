// The parents' portal in real Chromium (Debian's /usr/bin/chromium through playwright-core;
// nothing downloads a browser) against a real sprig-server on https://localhost, with a photo
// recorded and synced by a headless tablet (sprig-device): sign in, agreement, photo consent,
// the journal with the photo, a reply that reaches the tablet at its next sync, the account
// page (consent answer, sessions); an invitation from `parent invite` (set the password, with a
// common one refused, then sign in) and two-step sign-in turned on and used (the test computes
// the codes itself, RFC 6238). axe runs on
// every page (no serious or critical violations); no page logs a CSP violation. Screenshots go
// to SPRIG_SCREENSHOTS (`make portal-screenshots` points it at docs/screenshots/), else to a
// temporary folder.
//
// Run by `make portal-e2e` (inside scripts/with-keystore.sh, for the tablet's keystore); the
// binaries come from SPRIG_SERVER_BIN and SPRIG_DEVICE_BIN.
import { execFileSync, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const shots = process.env.SPRIG_SCREENSHOTS
  ? resolve(repo, process.env.SPRIG_SCREENSHOTS)
  : join(tmpdir(), 'sprig-portal-screenshots');
const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run through make portal-e2e)`);
  return v;
};
const SERVER = need('SPRIG_SERVER_BIN');
const DEVICE = need('SPRIG_DEVICE_BIN');
const CHROMIUM = process.env.SPRIG_CHROMIUM ?? '/usr/bin/chromium';

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

const json = (bin, args) => JSON.parse(execFileSync(bin, [...args, '--json'], { encoding: 'utf8' }));
const server = (...args) => json(SERVER, args);
const device = (...args) => json(DEVICE, args);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** RFC 6238 (SHA-1, 6 digits, 30 s): the code an authenticator app holding `base32` shows at `ms`. */
function totp(base32, ms = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/[\s=]/g, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(ms / 30000)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const off = mac[mac.length - 1] & 15;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

function freePort() {
  return new Promise((ok) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => ok(p));
    });
  });
}

async function waitPort(p, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const open = await new Promise((ok) => {
      const c = connect(p, '127.0.0.1', () => (c.destroy(), ok(true)));
      c.on('error', () => ok(false));
    });
    if (open) return;
    if (Date.now() > end) throw new Error(`nothing listens on ${p}`);
    await sleep(150);
  }
}

/** Runs axe in the page (evaluated over CDP, so the page's strict CSP stays on). */
async function expectAccessible(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
    [],
    `axe on ${name}`,
  );
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `portal-${name}.png`), fullPage: true });
}

before(async () => {
  mkdirSync(shots, { recursive: true });
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

  // The browser trusts the setting's CA, as a parent's phone would be set up to; a fresh
  // profile under a temporary HOME.
  mkdirSync(join(browserHome, '.pki', 'nssdb'), { recursive: true });
  const nss = `sql:${join(browserHome, '.pki', 'nssdb')}`;
  execFileSync('certutil', ['-d', nss, '-N', '--empty-password']);
  execFileSync('certutil', ['-d', nss, '-A', '-t', 'C,,', '-n', 'sprig', '-i', join(srv, 'ca.pem')]);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    env: { ...process.env, HOME: browserHome },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)))));
  rmSync(work, { recursive: true, force: true });
  console.log(`screenshots: ${shots} (${readdirSync(shots).filter((f) => f.startsWith('portal-')).length})`);
});

test('a parent signs in, agrees, answers consent and sees the photo from the tablet, then replies', async () => {
  // A phone-sized window.
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
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

test('an invited parent sets a password, signs in, turns on two-step sign-in and signs in with a code', async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  // The printed link, on this test's port.
  assert.match(ids.invite.link, /\/#\/invite\/[0-9a-f]{64}$/);
  const token = ids.invite.link.split('/#/invite/')[1];
  await page.goto(`${base}/#/invite/${token}`);
  await page.getByRole('heading', { name: 'Choose your password' }).waitFor();
  await page.getByText('Welcome, Priya Coldwell.').waitFor();
  await page.getByText('You will sign in with priya.coldwell@example.org.').waitFor();
  await expectAccessible(page, 'invitation');
  await shot(page, '7-invitation');
  // A common password (long enough) is refused, with what to do.
  await page.getByLabel('New password').fill('1qaz2wsx3edc');
  await page.getByRole('button', { name: 'Set password' }).click();
  await page.getByRole('alert').filter({ hasText: 'too common' }).waitFor();
  await expectAccessible(page, 'invitation refused');
  await shot(page, '8-invitation-refused');
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
  await shot(page, '9-two-step-set-up');
  await page.getByLabel('2. Enter the 6-digit code the app now shows.').fill(totp(secret));
  await page.getByRole('button', { name: 'Turn on', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'Two-step sign-in is on' }).waitFor();
  await page.getByText('On: signing in asks for a code').waitFor();
  await expectAccessible(page, 'two-step on');
  await shot(page, '10-two-step-on');

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
  await shot(page, '11-code');
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
