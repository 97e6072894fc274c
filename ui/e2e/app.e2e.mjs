// The end-to-end run of the real Sprig app binary in a real WebKitGTK window under Xvfb,
// driven over WebDriver (tauri-driver + WebKitWebDriver), against a real sprig-server on
// loopback, with a second, headless tablet (sprig-device). It writes its screenshots to
// SPRIG_SCREENSHOTS (`make app-screenshots` points it at docs/screenshots/), else to a
// temporary folder, so that a test run leaves the checkout as it was.
//
// Run by `make app-e2e` (inside scripts/with-keystore.sh and xvfb-run); the binaries come from
// SPRIG_APP_BIN, SPRIG_SERVER_BIN, SPRIG_DEVICE_BIN, SPRIG_HELPER_BIN; tauri-driver from
// TAURI_DRIVER. The eight steps of issue 9 are marked "Step N".
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { WebDriver, sleep } from './webdriver.mjs';
import { waitPort } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const shots = process.env.SPRIG_SCREENSHOTS
  ? resolve(repo, process.env.SPRIG_SCREENSHOTS)
  : join(tmpdir(), 'sprig-app-screenshots');
const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run through make app-e2e)`);
  return v;
};
const APP = need('SPRIG_APP_BIN');
const SERVER = need('SPRIG_SERVER_BIN');
const DEVICE = need('SPRIG_DEVICE_BIN');
const HELPER = need('SPRIG_HELPER_BIN');
const DRIVER = need('TAURI_DRIVER');

const work = mkdtempSync(join(tmpdir(), 'sprig-app-e2e-'));
const srv = join(work, 'server');
const appData = join(work, 'app');
const tablet2 = join(work, 'tablet-2');
const procs = [];
const wd = new WebDriver('');
const ids = {};
let port = 0;
let fp = '';

function freePort() {
  return new Promise((ok) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => ok(p));
    });
  });
}

const json = (bin, args) => JSON.parse(execFileSync(bin, [...args, '--json'], { encoding: 'utf8' }));
const server = (...args) => json(SERVER, args);
const device = (...args) => json(DEVICE, args);
const helper = (...args) => JSON.parse(execFileSync(HELPER, args, { encoding: 'utf8' }));

async function shot(name) {
  await sleep(700); // a WebDriver screenshot can lag a frame behind
  writeFileSync(join(shots, `${name}.png`), await wd.screenshot());
}

async function waitHttp(url, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.status < 500) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`${url} did not answer`);
    await sleep(150);
  }
}

function startServer() {
  const p = spawn(SERVER, ['serve', '--data', srv, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  procs.push(p);
  return p;
}

async function startApp(dataDir) {
  const driverPort = await freePort();
  const driver = spawn(DRIVER, ['--port', String(driverPort)], {
    env: { ...process.env, SPRIG_APP_DATA: dataDir, SPRIG_APP_MOCK_CAMERA: '1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  procs.push(driver);
  wd.url = `http://127.0.0.1:${driverPort}`;
  await waitHttp(`${wd.url}/status`);
  await wd.start({ 'tauri:options': { application: APP } });
  await wd.rect(1280, 800).catch(() => {});
  return driver;
}

async function stopApp(driver) {
  await wd.quit();
  driver.kill('SIGTERM'); // never SIGKILL: WebKitWebDriver would be orphaned holding the pipe
  await new Promise((r) => driver.once('exit', r));
}

async function pin(digits) {
  for (const d of digits) await wd.click(`button[aria-label="Digit ${d}"]`);
  await wd.click('button[aria-label="Unlock"]');
}

async function unlockAs(name, digits) {
  await wd.clickText('button.tile', name);
  await wd.wait('[data-screen="pin"]');
  await pin(digits);
  await wd.wait('[data-screen="home"]');
}

/** Closes every open sheet, the topmost first. */
async function closeSheets() {
  for (;;) {
    const buttons = await wd.findAll('[role="dialog"] header button');
    if (!buttons.length) return;
    await wd.cmd('POST', wd.s(`/element/${buttons[buttons.length - 1]}/click`), {});
    await sleep(250);
  }
}

async function syncInApp({ leaves = false } = {}) {
  await wd.click('[data-testid="sync-indicator"]');
  await sleep(300);
  // A sync that revokes or wipes the tablet leaves this screen: the caller waits for the next.
  if (!leaves) await wd.wait('[data-testid="sync-indicator"]', { text: /Online|Offline/ });
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  for (const f of readdirSync(shots)) if (f.endsWith('.png')) rmSync(join(shots, f));
  port = await freePort();
  fp = server('init', '--data', srv, '--name', 'Acorn Pre-School', '--hostname', 'localhost').ca_fingerprint;
  ids.amara = server('staff', 'add', '--data', srv, '--name', 'Amara Okafor', '--role', 'practitioner', '--pin', '2468').id;
  ids.ben = server('staff', 'add', '--data', srv, '--name', 'Ben Ashdown', '--role', 'practitioner', '--pin', '3579').id;
  ids.morgan = server('staff', 'add', '--data', srv, '--name', 'Morgan Hale', '--role', 'manager', '--pin', '1357').id;
  const kids = [
    ['Ada Birchley', 'amara', 'Acorns', 'yes'],
    ['Bram Coldwell', 'amara', 'Acorns', 'yes'],
    ['Dev Elmsworth', 'amara', 'Acorns', 'no'],
    ['Esme Greyholt', 'ben', 'Oaks', 'yes'],
    ['Finn Hartwell', 'ben', 'Oaks', 'yes'],
    ['Gia Ashdown', 'morgan', 'Oaks', 'yes'],
  ];
  for (const [name, kw, room, consent] of kids) {
    ids[name] = server('child', 'add', '--data', srv, '--name', name, '--key-worker', ids[kw], '--room', room, '--photo-consent', consent).id;
  }
  ids.bramParent = server('parent', 'add', '--data', srv, '--email', 'bram.parent@example.org', '--name', 'Priya Coldwell', '--password', 'a long e2e parent pass phrase', '--child', ids['Bram Coldwell']).id;
  startServer();
  await waitPort(port);
  // A photo file as a camera makes it (EXIF orientation and GPS are stripped by the tablet).
  execFileSync('convert', ['-size', '1600x1200', 'plasma:fractal', '-seed', '7', join(work, 'photo.jpg')]);
});

after(async () => {
  await wd.quit();
  for (const p of procs.reverse()) p.kill('SIGTERM');
  await sleep(300);
  rmSync(work, { recursive: true, force: true });
});

test('a key worker’s day in the real window', { timeout: 600_000 }, async () => {
  const driver = await startApp(appData);
  const url = `https://localhost:${port}`;

  // Step 1: enrol with a code (a wrong code first: its own message; the fingerprint match).
  await wd.wait('[data-screen="enrol"]');
  await shot('01-enrol');
  await wd.type('#server', url);
  await wd.type('#fp', fp);
  await wd.type('#name', 'Acorns room tablet');
  await wd.wait('[data-testid="fingerprint-match"]', { text: 'Acorn Pre-School' });
  await wd.type('#code', 'AAAAA-AAAAA');
  await wd.clickText('button', 'Enrol this tablet');
  await wd.wait('[data-testid="enrol-error"]', { text: 'not right' });
  await shot('02-enrol-wrong-code');
  const code = server('enrol-code', '--data', srv, '--device-name', 'Acorns room tablet').code;
  await wd.type('#code', code);
  await wd.clickText('button', 'Enrol this tablet');

  // Step 2: a wrong PIN, then the right one.
  await wd.wait('[data-screen="lock"]', { timeout: 30000 });
  await wd.wait('button.tile', { text: 'Amara Okafor' });
  await shot('03-lock');
  await wd.clickText('button.tile', 'Amara Okafor');
  await wd.wait('[data-screen="pin"]');
  await pin('0000');
  await wd.wait('[data-testid="pin-error"]', { text: 'Wrong PIN' });
  const attempts = await wd.text(await wd.find('[data-testid="pin-error"]'));
  assert.match(attempts, /attempts left/);
  await shot('04-pin-wrong');
  await pin('2468');
  await wd.wait('[data-screen="home"]');
  await wd.wait('button[data-child="Ada Birchley"]');
  await shot('05-home');

  // Steps 3 and 4: an observation with a photo file for two children; tagging a child without
  // photo consent on it shows the refusal.
  await wd.click('[data-testid="new-observation"]');
  await wd.wait('[data-screen="capture"]');
  await wd.click('[data-testid="add-children"]');
  for (const name of ['Ada Birchley', 'Bram Coldwell', 'Dev Elmsworth']) await wd.click(`input[data-child="${name}"]`);
  await wd.click('[data-testid="children-done"]');
  const fileInput = await wd.find('[data-testid="photo-file"]');
  await wd.cmd('POST', wd.s(`/element/${fileInput}/value`), { text: join(work, 'photo.jpg') });
  await wd.wait('.media img');
  await wd.wait('[data-testid="consent-refusal"]', { text: 'Dev Elmsworth does not have photo consent' });
  await wd.type('#obs-text', 'Ada and Bram built a tower of twelve bricks and counted them together.');
  await wd.clickText('button.chip', 'Mathematics');
  await wd.clickText('button.chip', 'Physical development');
  await wd.clickText('button.chip', '3 and 4-year-olds');
  await wd.clickText('button.chip', 'Active learning');
  await wd.type('#next-step', 'Count to twenty with the big bricks.');
  await shot('06-capture-consent-refused');
  await wd.click('button[aria-label="Remove Dev Elmsworth"]');
  await wd.gone('[data-testid="consent-refusal"]');
  await wd.click('[data-testid="publish"]');
  await wd.wait('[data-screen="home"]');

  // Step 5: sync; the photo is uploaded and then purged from the tablet.
  await syncInApp();
  const journal = device('journal', '--data', appData, '--staff', ids.amara, '--pin', '2468', '--child', ids['Ada Birchley']);
  const entry = journal.find((e) => e.text.startsWith('Ada and Bram built'));
  assert.ok(entry, 'the observation is in the tablet’s store');
  assert.deepEqual(entry.children.length, 2);
  assert.equal(entry.media[0].state, 'purged', 'uploaded, acknowledged and purged');
  assert.equal(entry.band, 'three-and-four-year-olds');

  // Step 6: the entry appears on a second (headless) tablet.
  const code2 = server('enrol-code', '--data', srv, '--device-name', 'Oaks room tablet').code;
  device('enrol', '--data', tablet2, '--server', url, '--code', code2, '--ca-fingerprint', fp);
  device('sync', '--data', tablet2);
  const other = device('journal', '--data', tablet2, '--staff', ids.ben, '--pin', '3579', '--child', ids['Bram Coldwell']);
  assert.ok(other.some((e) => e.id === entry.id), 'the second tablet has it');

  // The journal, an entry, and its purged photo streamed from the server into memory.
  await wd.click('button[data-child="Ada Birchley"]');
  await wd.wait('[data-screen="journal"]');
  await wd.wait(`button[data-entry="${entry.id}"]`);
  await shot('07-journal');
  // Live: the second tablet records an observation of Ada and syncs; the server's watch notice
  // makes this window sync and show it, with nobody tapping Sync.
  const live = device('observe', '--data', tablet2, '--staff', ids.ben, '--pin', '3579', '--child', ids['Ada Birchley'],
    '--text', 'Ada sorted the shells by size, smallest first.', '--area', 'M').id;
  device('sync', '--data', tablet2);
  await wd.wait(`button[data-entry="${live}"]`, { timeout: 30000 });
  await wd.click(`button[data-entry="${entry.id}"]`);
  await wd.wait('[data-testid="entry-detail"]');
  await wd.type('#reply-text', 'Lovely counting, Ada!');
  await wd.clickText('button', 'Send reply');
  await wd.wait('[data-testid="entry-detail"]', { text: 'Lovely counting' });
  await shot('08-entry');
  await wd.click('button[aria-label^="Open photo"]');
  await wd.wait('[data-testid="full-photo"]');
  await shot('09-photo-from-server');
  await closeSheets();
  await wd.click('button[aria-label="Back"]');

  // Approvals: a parent's contribution (written server-side, as the portal will) approved.
  const contribution = helper('parent-contribution', srv, '--parent', ids.bramParent, '--child', ids['Bram Coldwell'], '--text', 'Bram helped bake bread at the weekend and counted the spoons of flour.').id;
  await syncInApp();
  await wd.clickText('nav button', 'Approvals');
  await wd.wait('[data-testid="contribution"]', { text: 'bake bread' });
  await shot('10-approvals');
  await wd.click('[data-testid="approve"]');
  await wd.wait('[data-screen="approvals"]', { text: 'Nothing to review' });
  await syncInApp();
  const bram = device('journal', '--data', appData, '--staff', ids.amara, '--pin', '2468', '--child', ids['Bram Coldwell']);
  assert.equal(bram.find((e) => e.id === contribution).status, 'published');

  // Portrait 800×1280.
  await wd.rect(800, 1280);
  await wd.clickText('nav button', 'Children');
  await wd.wait('[data-screen="home"]');
  await shot('11-home-portrait');
  await wd.click('button[data-child="Ada Birchley"]');
  await wd.wait(`button[data-entry="${entry.id}"]`);
  await shot('12-journal-portrait');
  await wd.clickText('button', 'New observation for Ada');
  await wd.wait('[data-screen="capture"]');
  await shot('13-capture-portrait');
  // The in-app camera (getUserMedia with WebKit's mock capture device under Xvfb).
  await wd.clickText('button', 'Take photo');
  const end = Date.now() + 15000;
  while (!(await wd.exec('const v = document.querySelector("[role=dialog] video"); return !!v && v.videoWidth > 0'))) {
    if (Date.now() > end) throw new Error('the camera gave no frames');
    await sleep(200);
  }
  await shot('14-camera');
  await wd.click('[data-testid="shutter"]');
  await wd.wait('.media img');
  await wd.click('button[aria-label="Cancel"]');
  await wd.rect(1280, 800);

  // "Done" locks; a manager then sees coverage.
  await wd.click('[data-testid="done"]');
  await wd.wait('[role="dialog"]', { text: 'Everything is on the server' });
  await shot('15-done');
  await wd.clickText('[role="dialog"] button', 'OK');
  await wd.wait('[data-screen="lock"]');
  await unlockAs('Morgan Hale', '1357');
  await wd.clickText('nav button', 'Coverage');
  await wd.wait('[data-testid="not-observed"]', { text: 'Esme Greyholt' });
  await shot('16-coverage');

  // Step 7: auto-lock fires (the setting's inactivity_lock_secs, shortened on the server).
  helper('set-policies', srv, '--inactivity-lock-secs', '4');
  await syncInApp();
  await wd.wait('[data-screen="lock"]', { timeout: 20000 });
  await shot('17-auto-locked');
  helper('set-policies', srv, '--inactivity-lock-secs', '120');

  // Lease expired: a lease of seconds, then a sync lifts it.
  server('policy', 'set', '--data', srv, '--lock-after', '3s', '--wipe-after', '1d');
  await syncInApp();
  // Every sync renews the lease, and the server's watch notice of the policy change starts
  // one or two more: the lease runs out 3 s after the last of them.
  await wd.wait('[data-screen="blocked-lease_expired"]', { timeout: 45000 });
  await shot('18-lease-expired');
  server('policy', 'set', '--data', srv, '--lock-after', '12h', '--wipe-after', '90d', '--max-pin-failures', '3');
  await wd.clickText('button', 'Sync now');
  await wd.wait('[data-screen="lock"]', { timeout: 20000 });

  // Too many wrong PINs: locked until this tablet syncs, with a Sync button that lifts it.
  await wd.clickText('button.tile', 'Ben Ashdown');
  for (let i = 0; i < 3; i++) {
    await wd.wait('[data-screen="pin"], #locked-title');
    if ((await wd.findAll('#locked-title')).length) break;
    await pin('1111');
    await sleep(400);
  }
  await wd.wait('#locked-title', { text: 'Locked until this tablet syncs' });
  await shot('19-locked-until-sync');
  await wd.clickText('button', 'Sync now');
  await wd.wait('.tiles', { text: 'Ben Ashdown', timeout: 20000 });

  // Step 8: a revoke made on the server shows its screen.
  const status = device('status', '--data', appData);
  server('device', 'revoke', '--data', srv, status.device_id);
  await syncInApp({ leaves: true });
  await wd.wait('[data-screen="blocked-revoked"]', { timeout: 20000 });
  await shot('20-revoked');
  await stopApp(driver);

  // Wiped: the second tablet's twin in a window, wiped by a manager.
  const wipeData = join(work, 'app-2');
  const driver2 = await startApp(wipeData);
  const code3 = server('enrol-code', '--data', srv, '--device-name', 'Spare tablet').code;
  await wd.wait('[data-screen="enrol"]');
  await wd.type('#server', url);
  await wd.type('#fp', fp);
  await wd.type('#code', code3);
  await wd.clickText('button', 'Enrol this tablet');
  await wd.wait('[data-screen="lock"]', { timeout: 30000 });
  server('device', 'wipe', '--data', srv, device('status', '--data', wipeData).device_id);
  await syncInApp({ leaves: true });
  await wd.wait('[data-screen="blocked-wiped"]', { timeout: 20000 });
  await shot('21-wiped');
  await stopApp(driver2);
});
