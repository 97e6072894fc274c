// A small W3C WebDriver client over fetch (Node 20): enough to drive the Sprig window through
// tauri-driver + WebKitWebDriver. No browser is downloaded; nothing here talks to the internet.
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export class WebDriver {
  constructor(url) {
    this.url = url;
    this.id = null;
  }

  async cmd(method, path, body) {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok || json.value?.error) {
      const e = new Error(`${method} ${path}: ${json.value?.error ?? res.status} ${json.value?.message ?? ''}`);
      e.code = json.value?.error;
      throw e;
    }
    return json.value;
  }

  s(path) {
    return `/session/${this.id}${path}`;
  }

  async start(capabilities) {
    const v = await this.cmd('POST', '/session', { capabilities: { alwaysMatch: capabilities } });
    this.id = v.sessionId;
    return v;
  }

  async quit() {
    if (this.id) await this.cmd('DELETE', `/session/${this.id}`).catch(() => {});
    this.id = null;
  }

  async find(css) {
    const v = await this.cmd('POST', this.s('/element'), { using: 'css selector', value: css });
    return v[ELEMENT];
  }

  async findAll(css) {
    const v = await this.cmd('POST', this.s('/elements'), { using: 'css selector', value: css });
    return v.map((e) => e[ELEMENT]);
  }

  /** Waits until `css` matches a displayed element (and `test(text)` holds, when given). */
  async wait(css, { timeout = 15000, text } = {}) {
    const end = Date.now() + timeout;
    let last = '';
    for (;;) {
      try {
        const el = await this.find(css);
        const shown = await this.cmd('GET', this.s(`/element/${el}/displayed`));
        const t = await this.text(el);
        last = t;
        if (shown && (!text || (typeof text === 'string' ? t.includes(text) : text.test(t)))) return el;
      } catch (e) {
        if (e.code && e.code !== 'no such element' && e.code !== 'stale element reference') throw e;
      }
      if (Date.now() > end) throw new Error(`timed out waiting for ${css}${text ? ` with ${text}` : ''} (last text: ${last.slice(0, 200)})`);
      await sleep(150);
    }
  }

  async gone(css, timeout = 15000) {
    const end = Date.now() + timeout;
    while ((await this.findAll(css)).length) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${css} to go`);
      await sleep(150);
    }
  }

  async click(elOrCss) {
    const el = elOrCss.startsWith?.('#') || elOrCss.includes?.('[') || elOrCss.includes?.('.') || elOrCss.includes?.(' ') ? await this.wait(elOrCss) : elOrCss;
    await this.cmd('POST', this.s(`/element/${el}/click`), {});
  }

  /** Clicks the button (or other element matching `css`) whose text contains `text`. */
  async clickText(css, text) {
    const end = Date.now() + 15000;
    for (;;) {
      for (const el of await this.findAll(css)) {
        if ((await this.text(el)).includes(text)) {
          await this.cmd('POST', this.s(`/element/${el}/click`), {});
          return;
        }
      }
      if (Date.now() > end) throw new Error(`no ${css} with text ${text}`);
      await sleep(150);
    }
  }

  async type(css, value) {
    const el = await this.wait(css);
    await this.cmd('POST', this.s(`/element/${el}/clear`), {}).catch(() => {});
    await this.cmd('POST', this.s(`/element/${el}/value`), { text: value });
  }

  async text(el) {
    return this.cmd('GET', this.s(`/element/${el}/text`));
  }

  async exec(script, args = []) {
    return this.cmd('POST', this.s('/execute/sync'), { script, args });
  }

  async screenshot() {
    return Buffer.from(await this.cmd('GET', this.s('/screenshot')), 'base64');
  }

  async rect(width, height) {
    return this.cmd('POST', this.s('/window/rect'), { width, height, x: 0, y: 0 });
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
