// Browser test of keyboard access to every AGIFlow view: from where JupyterLab puts the focus when a view
// opens, Tab visits each of the view's controls in turn, each shows that it has the focus, and Shift+Tab
// reaches the view's tools in JupyterLab's toolbar, one Tab stop whose items the arrow keys walk (the ARIA
// toolbar pattern JupyterLab's Toolbar implements). prompts.test.mjs does a whole task by keyboard alone.
//
// Needs a running JupyterLab with agiflow-lab installed, the app exposed as `window.jupyterapp`
// (AGIFLOW_LAB_URL, AGIFLOW_LAB_TOKEN, CHROMIUM_PATH: see prompts.test.mjs) and a project of traces
// (AGIFLOW_TRACES_PROJECT, see traces.test.mjs). Run: node --test tests/browser/
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { closeBrowser, env, firstOf, focusNow, inLab, openByCommand, until } from './support/lab.mjs';

const skip =
  env.url === '/' || !process.env.AGIFLOW_TRACES_PROJECT
    ? 'set AGIFLOW_LAB_URL and AGIFLOW_TRACES_PROJECT (see the headers of prompts.test.mjs, traces.test.mjs)'
    : false;
// Each view (on `project` if given), and in those with a list the first `row` to open with Enter, after
// which `opened` shows (default: the row, selected): the detail is walked as well.
const VIEWS = [
  { name: 'prompts', row: '.agiflow-prompt-item' },
  { name: 'datasets', row: '.agiflow-dataset-item' },
  { name: 'models' },
  { name: 'evals', row: '.agiflow-run-item' },
  { name: 'jobs', row: '.agiflow-job-item' },
  {
    name: 'traces',
    project: process.env.AGIFLOW_TRACES_PROJECT, // the traces test_browser.py seeded
    row: '[data-testid="agiflow-trace-open"]',
    opened: '[data-testid="agiflow-span-detail"]'
  },
  { name: 'dashboard' },
  { name: 'schedules' },
  { name: 'settings' }
];
// What a keyboard user can operate: visible, enabled, not taken out of the Tab order.
const CONTROLS = 'button, input, select, textarea, summary, a[href], jp-button, [tabindex]';

describe('AGIFlow views from the keyboard', () => {
  after(closeBrowser);

  test('in every view Tab reaches each control, which shows the focus, and the toolbar by Shift+Tab', { skip, timeout: 180_000 }, async t => {
    await inLab(t, { name: 'keyboard', reset: true }, async page => {
      for (const { name, project, row, opened = `${row}.agiflow-mod-selected` } of VIEWS) {
        const id = `agiflow-lab-${name}`;
        const view = await openByCommand(page, id, `agiflow-lab:open-${name}`);
        const select = view.getByTestId('agiflow-project-select');
        await firstOf(select, view);
        if (project) {
          await select.selectOption(project);
          await view.locator(row).first().waitFor();
          await view.locator('.jp-Toolbar [data-testid="agiflow-reload"]').focus(); // where opening it left it
        }
        const content = await settled(page, id);

        // Forwards from where opening the view left the focus, until it leaves the view.
        await tabThrough(page, id, content, `${name}: Tab visits the view's controls in order`);

        // Backwards from the first control: the toolbar's Tab stop, then its other items by arrow keys.
        await page.locator(`#${id} [data-agiflow-key="${content[0]}"]`).focus();
        await page.keyboard.press('Shift+Tab');
        const tool = await focused(page, id);
        assert.ok(tool.inToolbar, `${name}: Shift+Tab from the first control reaches the toolbar (got ${tool.name})`);
        assert.ok(tool.shown, `${name}: the toolbar's ${tool.name} has the focus but does not show it`);
        const tools = [tool.name];
        for (let i = 0; i < 10; i++) {
          await page.keyboard.press('ArrowRight');
          const next = await focused(page, id);
          if (!next.inToolbar || tools.includes(next.name)) break;
          assert.ok(next.shown, `${name}: the toolbar's ${next.name} has the focus but does not show it`);
          tools.push(next.name);
        }
        const toolbar = await page.evaluate(
          ([viewId, selector]) =>
            [...document.getElementById(viewId).querySelectorAll(`.jp-Toolbar :is(${selector})`)].filter(
              el => el.checkVisibility() && !el.disabled
            ).length,
          [id, CONTROLS]
        );
        assert.equal(tools.length, toolbar, `${name}: the arrow keys reach every tool (${tools.join(', ')})`);
        assert.deepEqual(await mouseOnly(page, id), [], `${name}: clickable, but no control a keyboard reaches`);
        let detail = '';
        if (row) {
          // The first row opened with Enter: from it, Tab visits the rest, the detail's controls included.
          // Marked, not named by its place: rows may move while the detail loads (a live list).
          const first = page.locator(`#${id} ${row}`).first();
          await first.evaluate(el => el.setAttribute('data-agiflow-opened', ''));
          await first.focus();
          await page.keyboard.press('Enter');
          await page.locator(`#${id} ${opened}`).first().waitFor();
          const controls = await settled(page, id);
          const from = await page.locator(`#${id} [data-agiflow-opened]`).getAttribute('data-agiflow-key');
          await page.locator(`#${id} [data-agiflow-opened]`).focus();
          const rest = controls.slice(controls.indexOf(from) + 1);
          // As many Tabs as it has controls: a detail may still add rows below them (a run's items).
          await tabThrough(page, id, rest, `${name}: Tab from the opened row visits the detail`, { toEnd: false });
          assert.deepEqual(await mouseOnly(page, id), [], `${name}: clickable, but no control a keyboard reaches`);
          detail = `; ${rest.length} after the opened row: ${rest.join(' ')}`;
        }
        t.diagnostic(`${name}: ${content.length} controls by Tab${detail}, ${tools.length} tools by arrows`);
      }
    });
  });
});

/**
 * The view's operable controls outside its toolbar, in document order (the Tab order: no positive
 * tabindex here), once the view has finished loading: the same list twice a quarter of a second apart,
 * and no "Loading…" shown. Each gets a `data-agiflow-key` to be named by.
 */
async function settled(page, id) {
  let previous = '';
  return until(async () => {
    const names = await page.evaluate(
      ([viewId, selector]) =>
        [...document.getElementById(viewId).querySelectorAll(selector)]
          .filter(el => !el.closest('.jp-Toolbar') && el.checkVisibility() && !el.disabled && el.tabIndex >= 0)
          .map((el, i) => {
            const label = el.dataset.testid ?? el.getAttribute('aria-label') ?? el.textContent.trim().slice(0, 24);
            el.dataset.agiflowKey = `${i}:${el.tagName.toLowerCase()}:${label}`;
            return el.dataset.agiflowKey;
          }),
      [id, CONTROLS]
    );
    const loading = await page.locator(`#${id}`).getByText('Loading…', { exact: true }).count();
    const same = names.join('|') === previous && !loading;
    previous = names.join('|');
    if (!same) await new Promise(resolve => setTimeout(resolve, 250));
    return same && names.length > 0 && names;
  }, `the ${id} view to settle`);
}

/**
 * Press Tab until the focus leaves the view `id` (`toEnd`) or `expected.length` times: it must have visited
 * `expected` (keys of `settled`) in that order, each showing the focus. `what` names the walk in a failure.
 */
async function tabThrough(page, id, expected, what, { toEnd = true } = {}) {
  const visited = [];
  for (let i = 0; i < (toEnd ? 2 * expected.length + 5 : expected.length); i++) {
    await page.keyboard.press('Tab');
    const now = await focused(page, id);
    if (toEnd && !now.inView) break;
    visited.push(now);
  }
  assert.deepEqual(visited.map(v => v.name), expected, what);
  for (const v of visited) assert.ok(v.shown, `${what}: ${v.name} has the focus but does not show it`);
}

/** Where the focus is: in the view (and its toolbar) or not, its name, and whether it shows it. */
async function focused(page, id) {
  const { element, shown } = await focusNow(page);
  const where = await element.evaluate((el, viewId) => {
    const view = document.getElementById(viewId);
    return {
      inView: view.contains(el),
      inToolbar: Boolean(el.closest('.jp-Toolbar')) && view.contains(el),
      name: el.dataset?.agiflowKey ?? `${el.tagName.toLowerCase()}:${el.dataset?.testid ?? el.title ?? ''}`
    };
  }, id);
  return { ...where, shown };
}

/** What the mouse can click in the view (a pointer cursor) with no control a keyboard reaches in or around it. */
async function mouseOnly(page, id) {
  return page.evaluate(
    ([viewId, selector]) =>
      [...document.getElementById(viewId).querySelectorAll('*')]
        .filter(el => el.checkVisibility() && getComputedStyle(el).cursor === 'pointer')
        .filter(el => !el.closest(selector) && !el.querySelector(selector) && !el.closest('label'))
        .map(el => `${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 24)}"`),
    [id, CONTROLS]
  );
}
