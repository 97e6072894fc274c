// Drives the release app over WebDriver and times what a key worker waits for. Each run starts
// the app afresh on the same year-sized tablet. Figures are medians over the runs; the clock is
// this process's, polling the DOM every 5 ms (so each figure carries up to ~5 ms of polling).
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { WebDriver, sleep } from '../../ui/e2e/webdriver.mjs';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set (run benches/app.sh)`);
  return process.env[k];
};
const APP = env('SPRIG_APP_BIN');
const setting = JSON.parse(readFileSync(env('SPRIG_BENCH_SETTING'), 'utf8'));
const RUNS = Number(process.env.SPRIG_BENCH_RUNS ?? 5);
const vips = (process.env.SPRIG_BENCH_VIPS_MS ?? '').split(' ').filter(Boolean).map(Number);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const port = () =>
  new Promise((ok) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => ok(p));
    });
  });

async function until(wd, js, timeout = 30000) {
  const end = Date.now() + timeout;
  for (;;) {
    if (await wd.exec(`return !!(${js})`)) return;
    if (Date.now() > end) throw new Error(`timed out: ${js}`);
    await sleep(5);
  }
}

function rssOf(exe) {
  const out = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const target = readlinkSync(`/proc/${pid}/exe`);
      if (target !== exe && !target.endsWith('/WebKitWebProcess') && !target.endsWith('/WebKitNetworkProcess')) continue;
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = (k) => Number(status.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1] ?? 0);
      out.push({ pid, exe: target.split('/').pop(), rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 });
    } catch {
      /* gone or not ours */
    }
  }
  return out;
}

const r = { start: [], unlock: [], journal: [], stage: [], save: [], rss: [], hwm: [], web: [] };
for (let run = 0; run < RUNS; run++) {
  const p = await port();
  const driver = spawn(env('TAURI_DRIVER'), ['--port', String(p)], {
    env: { ...process.env, SPRIG_APP_DATA: env('SPRIG_BENCH_DATA') },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const wd = new WebDriver(`http://127.0.0.1:${p}`);
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`${wd.url}/status`);
      break;
    } catch {
      await sleep(50);
    }
  }
  let t = performance.now();
  await wd.start({ 'tauri:options': { application: APP } });
  await until(wd, `document.querySelector('[data-screen="lock"] button.tile')`);
  r.start.push(performance.now() - t);

  await wd.click('button.tile');
  for (const d of setting.pin) await wd.click(`button[aria-label="Digit ${d}"]`);
  t = performance.now();
  await wd.click('button[aria-label="Unlock"]');
  await until(wd, `document.querySelector('[data-screen="home"] button[data-child]')`);
  r.unlock.push(performance.now() - t);

  t = performance.now();
  await wd.click('button[data-child]');
  await until(wd, `document.querySelector('[data-screen="journal"] button[data-entry]')`);
  r.journal.push(performance.now() - t);

  await wd.clickText('button', 'New observation for');
  await until(wd, `document.querySelector('[data-screen="capture"]')`);
  const input = await wd.find('[data-testid="photo-file"]');
  t = performance.now();
  await wd.cmd('POST', wd.s(`/element/${input}/value`), { text: env('SPRIG_BENCH_PHOTO') });
  await until(wd, `document.querySelector('.media img')`);
  r.stage.push(performance.now() - t);
  await wd.type('#obs-text', `Benchmark observation ${run}`);
  t = performance.now();
  await wd.click('[data-testid="publish"]');
  // Saved: the confirmation shows as soon as the observation is in the encrypted store (the
  // journal then reloads, which "open a child's journal" measures on its own).
  await until(wd, `document.querySelector('[role="status"]')?.textContent.includes('saved')`);
  r.save.push(performance.now() - t);
  await until(wd, `document.querySelector('[data-screen="journal"] button[data-entry]')`);

  await sleep(500);
  const mem = rssOf(APP);
  const app = mem.filter((m) => m.exe === APP.split('/').pop());
  r.rss.push(app.reduce((a, m) => a + m.rss, 0));
  r.hwm.push(app.reduce((a, m) => a + m.hwm, 0));
  r.web.push(mem.filter((m) => m.exe !== APP.split('/').pop()).reduce((a, m) => a + m.rss, 0));
  await wd.quit();
  driver.kill('SIGTERM');
  await new Promise((ok) => driver.once('exit', ok));
}

const f = (xs) => `p50 ${median(xs).toFixed(0)} ms (runs: ${xs.map((x) => x.toFixed(0)).join(', ')})`;
console.log(`tablet: ${setting.entries} observations, ${setting.children.length} children`);
console.log(`app start → lock screen: ${f(r.start)}`);
console.log(`unlock → home: ${f(r.unlock)}`);
console.log(`open a child's journal (${setting.entries / setting.children.length} entries): ${f(r.journal)}`);
console.log(`12 MP photo chosen → preview (bytes to Rust over IPC): ${f(r.stage)}`);
console.log(`save with the 12 MP photo (publish → "Observation saved"): ${f(r.save)}`);
const save = median(r.stage.map((s, i) => s + r.save[i]));
if (vips.length) {
  const v = median(vips);
  console.log(`vipsthumbnail on the same photo: p50 ${v} ms (runs: ${vips.join(', ')}); save (stage + publish) p50 ${save.toFixed(0)} ms = ${(save / v).toFixed(2)} × vipsthumbnail`);
}
console.log(`resident memory of sprig-app after the run: p50 ${median(r.rss).toFixed(0)} MB (peak ${median(r.hwm).toFixed(0)} MB); WebKit's web and network processes: ${median(r.web).toFixed(0)} MB`);
