// What every browser scenario shares: where JupyterLab runs, how Chromium starts, and small waits.
// (Not a test file: `node --test` only runs *.test.mjs.)
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

export const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');

// Debian's Chromium as root, with no network beyond the machine.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run'
];

export const env = {
  url: withSlash(process.env.AGIFLOW_LAB_URL ?? ''),
  token: process.env.AGIFLOW_LAB_TOKEN ?? '',
  prompt: process.env.AGIFLOW_EXPECT_PROMPT ?? '',
  project: process.env.AGIFLOW_PROJECT || 'default',
  chromium: process.env.CHROMIUM_PATH || '/usr/bin/chromium'
};

let launched;

/**
 * Run `scenario(page)` on a JupyterLab page of its own: a fresh browser context (its own cookies), on the
 * workspace `workspace` (`agiflow-<name>` unless given; null: the default one), so other scenarios' layouts
 * do not leak in, then `path` (e.g. `/tree/<notebook>`), signed in with `token` (the server's owner unless
 * given; `user-<name>` for someone else, see tests/support/identity.py). `beforeLoad(page)` attaches
 * listeners before the page loads. `app: 'notebook'` opens Notebook 7's page instead (`/notebooks<path>`,
 * no workspaces there). Page errors are reported on `t`; a failure saves `<name>-failure.png`.
 * The browser is the file's (each test file runs in a process of its own), launched at first use: each
 * file closes it with `after(closeBrowser)`.
 */
export async function inLab(t, options, scenario) {
  const { name, token = env.token, path = '', viewport = { width: 1280, height: 900 }, reset = false } = options;
  const workspace = options.workspace === undefined ? `agiflow-${name}` : options.workspace;
  launched ??= chromium.launch({ executablePath: env.chromium, args: CHROMIUM_ARGS });
  await mkdir(ARTIFACTS, { recursive: true });
  const context = await (await launched).newContext({ viewport });
  const page = await context.newPage();
  page.on('pageerror', error => t.diagnostic(`page error: ${error.message}`));
  try {
    await options.beforeLoad?.(page);
    const notebook = options.app === 'notebook';
    const where = notebook ? 'notebooks' : workspace === null ? 'lab' : `lab/workspaces/${workspace}`;
    await page.goto(`${env.url}${where}${path}?${reset ? 'reset&' : ''}token=${encodeURIComponent(token)}`);
    await page.locator(notebook ? '#main-panel' : '#jp-main-dock-panel').waitFor({ timeout: 60_000 });
    return await scenario(page);
  } catch (error) {
    await page.screenshot({ path: join(ARTIFACTS, `${name}-failure.png`) }).catch(() => {});
    throw error;
  } finally {
    await context.close();
  }
}

/**
 * Record, from before `page` loads (call it in `beforeLoad`), its AGIFlow REST calls whose path contains
 * `fragment` and the URL of its events WebSocket: scenarios check that updates came over the socket, not
 * by polling.
 */
export function watchTraffic(page, fragment) {
  const seen = { requests: [], socketUrl: undefined };
  page.on('request', request => {
    const url = new URL(request.url());
    if (url.pathname.includes('/agiflow/api/v1/projects/') && url.pathname.includes(fragment)) {
      seen.requests.push(`${request.method()} ${url.pathname}${url.search}`);
    }
  });
  page.on('websocket', socket => {
    if (socket.url().includes('/agiflow/api/v1/events')) {
      seen.socketUrl = socket.url();
    }
  });
  return seen;
}

/** Close the file's browser, if one was launched (`after(closeBrowser)`). */
export async function closeBrowser() {
  const browser = await launched;
  launched = undefined;
  await browser?.close();
}

/**
 * Toasts of the whole page (JupyterLab's news question, AGIFlow's own notifications). Hidden with
 * `display: none`: a toast's slide-in animation sets `visibility: visible` on the toast itself.
 */
const TOASTS = '.Toastify__toast-container';

/**
 * Close JupyterLab's toasts (e.g. the news question), which cover the bottom right of the page. A toast
 * under a modal dialog cannot be clicked: that is given up on after a second, not after Playwright's
 * 30 s default (two of those per theme screenshot once cost a scenario a minute of idling).
 */
export async function hideToasts(page) {
  const close = page.locator('.jp-Notification-Toast-Close');
  for (const button of await close.all()) {
    await button.click({ timeout: 1_000 }).catch(() => {});
  }
  await close.first().waitFor({ state: 'detached', timeout: 1_000 }).catch(() => {});
}

/**
 * Wait until `locator` is visible, or fail at once with the message of an
 * `.agiflow-error` shown inside `scope` instead.
 */
export async function firstOf(locator, scope) {
  const error = scope.locator('.agiflow-error');
  await locator.or(error).first().waitFor({ timeout: 30_000 });
  if (await error.first().isVisible()) {
    assert.fail(`the view shows an error: ${await error.first().innerText()}`);
  }
}

/**
 * Open one of AGIFlow's main-area views (`#id`) from its launcher card, opening a launcher first when
 * none shows. A launcher card is a plain click on something visible: no keyboard shortcut whose focus
 * JupyterLab's restored layout can steal (the command palette flaked that way).
 */
export async function openFromLauncher(page, id, title) {
  const view = page.locator(`#${id}`);
  if (await view.isVisible()) {
    return view;
  }
  const card = page.locator('.jp-LauncherCard').filter({ hasText: title, visible: true }).first();
  if (!(await card.isVisible())) {
    await page.locator('#jp-main-dock-panel .lm-TabBar-addButton').first().click();
  }
  await card.click();
  await view.waitFor({ state: 'visible' });
  return view;
}

function withSlash(url) {
  return url.endsWith('/') ? url : `${url}/`;
}

/**
 * Open one of AGIFlow's main-area views (`#id`) by running its command through the app
 * (`window.jupyterapp`: the test server sets `LabApp.expose_app_in_browser`). No palette, no
 * launcher click: nothing that JupyterLab's restored layout or focus can get in the way of.
 */
export async function openByCommand(page, id, command, args = {}) {
  await page.waitForFunction(name => window.jupyterapp?.commands.hasCommand(name), command, { timeout: 60_000 });
  await page.evaluate(([name, a]) => window.jupyterapp.commands.execute(name, a).then(() => undefined), [command, args]);
  const view = page.locator(`#${id}`);
  await view.waitFor({ state: 'visible' });
  return view;
}

/**
 * Screenshots of what is on screen in the light and the dark theme (`<name>-light.png`, `<name>-dark.png`
 * in the artifacts), leaving the light theme on. Themes switch through JupyterLab's own command.
 */
export async function screenshotThemes(page, name) {
  for (const [theme, suffix] of [
    ['JupyterLab Dark', 'dark'],
    ['JupyterLab Light', 'light']
  ]) {
    await page.evaluate(t => window.jupyterapp.commands.execute('apputils:change-theme', { theme: t }), theme);
    await page.waitForFunction(
      light => document.body.dataset.jpThemeLight === light,
      suffix === 'light' ? 'true' : 'false',
      { timeout: 30_000 }
    );
    // A theme switch shows JupyterLab's splash (its logo over a dimmed page) until the theme's CSS loaded.
    await page.locator('#jupyterlab-splash').waitFor({ state: 'detached', timeout: 30_000 });
    // Toasts hidden only while the picture is taken: nothing is clicked, so a dialog may be open.
    await page.screenshot({
      path: join(ARTIFACTS, `${name}-${suffix}.png`),
      style: `${TOASTS} { display: none !important; }`
    });
  }
}

/** Ask `check` until it returns something truthy (returned), or fail naming `what` after `timeoutMs`. */
export async function until(check, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await check();
    if (found) {
      return found;
    }
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 250));
  }
}

/** One AGIFlow API call as the server's owner (its token); the decoded answer, or a failed assertion naming it. */
export async function api(method, path, body) {
  const response = await fetch(`${env.url}agiflow/api/v1/${path}`, {
    method,
    headers: { Authorization: `token ${env.token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path} → ${response.status}: ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/**
 * A notebook in the server's files, written as the owner: its code cells (`{ source, tags }`, e.g. tags
 * `['parameters']` for papermill's parameters cell), for the Python 3 kernel.
 */
export async function putNotebook(path, cells) {
  const notebook = {
    cells: cells.map(({ source, tags = [] }) => ({
      cell_type: 'code',
      metadata: { tags },
      source,
      outputs: [],
      execution_count: null
    })),
    metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
    nbformat: 4,
    nbformat_minor: 5
  };
  const response = await fetch(`${env.url}api/contents/${encodeURIComponent(path)}`, {
    method: 'PUT',
    headers: { Authorization: `token ${env.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ type: 'notebook', format: 'json', content: notebook })
  });
  assert.ok(response.ok, `PUT ${path} → ${response.status}: ${await response.text()}`);
}

/**
 * Press Tab (Shift+Tab with `back`) until `locator` has the keyboard focus, at most `max` times, and check
 * that it shows it (see `focusNow`): what a keyboard-only user must be able to do. A failure names the
 * elements the focus went through, where a trap or a skipped control is.
 */
export async function tabTo(page, locator, { max = 120, back = false } = {}) {
  const target = await locator.elementHandle({ timeout: 30_000 });
  const path = [];
  for (let i = 0; i < max; i++) {
    const now = await focusNow(page);
    if (await target.evaluate((el, focused) => el === focused, now.element)) {
      assert.ok(now.shown, `${await describe(target)} has the focus but does not show it`);
      return;
    }
    await page.keyboard.press(back ? 'Shift+Tab' : 'Tab');
    path.push(await describe(await page.evaluateHandle(() => document.activeElement)));
  }
  assert.fail(`${await describe(target)} not reached in ${max} Tabs; the focus went: ${path.slice(-40).join(' → ')}`);
}

/**
 * The element with the keyboard focus (`element`: the custom element itself when the focus is inside its
 * shadow root, e.g. a `jp-button`) and whether it shows it (`shown`): it matches `:focus-visible` and it,
 * or the control inside it, draws an outline or a box shadow.
 */
export async function focusNow(page) {
  const element = await page.evaluateHandle(() => document.activeElement);
  const shown = await element.evaluate(host => {
    let inner = host;
    while (inner?.shadowRoot?.activeElement) inner = inner.shadowRoot.activeElement;
    const ring = el => {
      const s = getComputedStyle(el);
      return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
    };
    return Boolean(inner) && inner.matches(':focus-visible') && (ring(inner) || ring(host));
  });
  return { element, shown };
}

/** A short name of an element for a failure message: tag, test id or class, and its text. */
async function describe(handle) {
  return handle.evaluate(el => {
    if (!el || el === document.body) return 'body';
    const id = el.dataset?.testid ? `[${el.dataset.testid}]` : el.className ? `.${String(el.className).split(' ')[0]}` : '';
    return `${el.tagName.toLowerCase()}${id}"${(el.textContent ?? '').trim().slice(0, 20)}"`;
  });
}
