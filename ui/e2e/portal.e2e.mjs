// The parents' portal in real Chromium (Debian's /usr/bin/chromium through playwright-core;
// nothing downloads a browser) against a real sprig-server on https://localhost, with a photo
// recorded and synced by a headless tablet (sprig-device): sign in, agreement, photo consent,
// the journal with the photo, a reply that reaches the tablet at its next sync, the account
// page (consent answer, sessions). axe runs on
// every page (no serious or critical violations); no page logs a CSP violation. Screenshots go
// to SPRIG_SCREENSHOTS (`make portal-screenshots` points it at docs/screenshots/), else to a
// temporary folder.
//
// Run by `make portal-e2e` (inside scripts/with-keystore.sh, for the tablet's keystore); the
// binaries come from SPRIG_SERVER_BIN and SPRIG_DEVICE_BIN.
import { execFileSync, spawn } from 'node:child_process';
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
