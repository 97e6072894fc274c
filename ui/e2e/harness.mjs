// What the browser end-to-end tests share: the binaries from the environment, a free port,
// RFC 6238 codes, axe, screenshots, and Debian's Chromium (through playwright-core; nothing
// downloads a browser) in a throw-away profile that trusts the setting's CA.
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** The environment variable `name`, which the make target sets. */
export function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run the test through its make target)`);
  return v;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs `bin args --json` and parses what it prints. */
export function json(bin, args) {
  return JSON.parse(execFileSync(bin, [...args, '--json'], { encoding: 'utf8' }));
}

/** RFC 6238 (SHA-1, 6 digits, 30 s): the code an authenticator app holding `base32` shows at `ms`. */
export function totp(base32, ms = Date.now()) {
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

/**
 * An authenticator app holding `base32`, as the server sees it: each 30 s step's code is
 * accepted once, and a step either side of now is allowed. `next()` gives the code of the
 * earliest step not given yet that the server still takes, waiting for the clock when two
 * steps ahead would be needed.
 */
export function authenticator(base32) {
  let used = -Infinity;
  return {
    /** The code `next()` gave last. */
    last: null,
    async next() {
      for (;;) {
        const now = Math.floor(Date.now() / 30000);
        const step = Math.max(used + 1, now);
        if (step <= now + 1) {
          used = step;
          this.last = totp(base32, step * 30000);
          return this.last;
        }
        await sleep(1000);
      }
    },
  };
}

/** A loopback port nothing listens on. */
export function freePort() {
  return new Promise((ok) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => ok(p));
    });
  });
}

/** Waits until something listens on loopback port `p`. */
export async function waitPort(p, ms = 20000) {
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

/** Waits for the page's finite animations (a toast fading in) to end: axe would judge the
 * contrast of a half-faded frame, and a screenshot would catch it. */
export function settled(page) {
  return page.evaluate(() => Promise.all(document.getAnimations()
    .filter((a) => a.effect?.getComputedTiming().endTime !== Infinity)
    .map((a) => a.finished.catch(() => undefined))));
}

/** Runs axe in the page (evaluated over CDP, so the page's strict CSP stays on): no serious or
 * critical violations. */
export async function expectAccessible(page, name) {
  await settled(page);
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
    [],
    `axe on ${name}`,
  );
}

/** `shot(page, name)` saves a full-page screenshot as `<dir>/<prefix>-<name>.png`. */
export function screenshots(dir, prefix) {
  mkdirSync(dir, { recursive: true });
  return async (page, name) => {
    await settled(page);
    await page.screenshot({ path: join(dir, `${prefix}-${name}.png`), fullPage: true });
  };
}

/** Debian's Chromium, headless, with a fresh profile under `home` whose NSS database trusts the
 * CA certificate at `caPem`, as a phone or laptop set up for the setting would. */
export async function launchTrusting(caPem, home) {
  mkdirSync(join(home, '.pki', 'nssdb'), { recursive: true });
  const nss = `sql:${join(home, '.pki', 'nssdb')}`;
  execFileSync('certutil', ['-d', nss, '-N', '--empty-password']);
  execFileSync('certutil', ['-d', nss, '-A', '-t', 'C,,', '-n', 'sprig', '-i', caPem]);
  return chromium.launch({
    executablePath: process.env.SPRIG_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    env: { ...process.env, HOME: home },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** Collects the page's Content-Security-Policy violations into `into`. */
export function watchCsp(page, into) {
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) into.push(m.text());
  });
}

/** A phone-sized browser context. */
export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
