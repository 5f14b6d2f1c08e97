// Browser test of the in-notebook widgets (agiflow_lab.widgets, anywidget): a notebook whose cell builds a
// PromptEditor is opened and run, in JupyterLab and in Notebook 7 (the same widget and frontends, another
// application around them); the widget renders, fills the template in live as a variable is typed, and
// "Save as new version" reaches the API. Then the other four widgets in one notebook, on the data
// test_browser.py seeded: EvalRunView (totals, failures first), DatasetView (items, a filter the kernel
// applies), TraceView (the span tree, a span chosen by keyboard) and MetricsView (every span counted).
//
// Needs a running JupyterLab with agiflow-lab and notebook>=7 installed (AGIFLOW_LAB_URL, AGIFLOW_LAB_TOKEN,
// AGIFLOW_PROJECT, CHROMIUM_PATH: see prompts.test.mjs). The test makes its own prompt and notebook through
// the REST APIs. Run: node --test tests/browser/
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, test } from 'node:test';

import { api, closeBrowser, env, inLab, putNotebook, screenshotThemes, until } from './support/lab.mjs';

const skip = env.url === '/' ? 'set AGIFLOW_LAB_URL (see the header of prompts.test.mjs)' : false;
const WIDGET_PLUGINS = ['@jupyter-widgets/jupyterlab-manager:plugin', 'anywidget:plugin'];
// What test_browser.py seeded: a finished echo run of 4 items (3 pass) on its dataset, and a project of
// traces (see evals.test.mjs and traces.test.mjs).
const seeded = {
  run: process.env.AGIFLOW_EVALS_RUN ?? '',
  dataset: process.env.AGIFLOW_EVALS_DATASET ?? '',
  items: Number(process.env.AGIFLOW_EVALS_ITEMS || 4),
  tracesProject: process.env.AGIFLOW_TRACES_PROJECT ?? '',
  trace: JSON.parse(process.env.AGIFLOW_TRACES || '[]').find(trace => trace.answer === '4'),
  spans: Number(process.env.AGIFLOW_TRACES_SPANS || 0)
};
const skipSeeded =
  skip || (!seeded.run || !seeded.trace ? 'set AGIFLOW_EVALS_* and AGIFLOW_TRACES* (see test_browser.py)' : false);

describe('AGIFlow widgets in a notebook', () => {
  after(closeBrowser);

  test('a PromptEditor renders, fills in a variable live and saves a new version', { skip, timeout: 240_000 }, t =>
    promptEditor(t, 'lab')
  );

  test('the same PromptEditor works in Notebook 7', { skip, timeout: 240_000 }, t => promptEditor(t, 'notebook'));

  test('the run, dataset, trace and metrics widgets render the seeded data and answer the user', { skip: skipSeeded, timeout: 240_000 }, async t => {
    const client = project => `Client(project=${JSON.stringify(project)})`;
    const cells = [
      'from agiflow_lab import Client\nfrom agiflow_lab.widgets import DatasetView, EvalRunView, MetricsView, TraceView',
      `EvalRunView(${client(env.project)}, ${JSON.stringify(seeded.run)})`,
      `DatasetView(${client(env.project)}, ${JSON.stringify(seeded.dataset)})`,
      `TraceView(${client(seeded.tracesProject)}, ${JSON.stringify(seeded.trace.id)})`,
      `MetricsView(${client(seeded.tracesProject)}, hours=1, bucket="minute")`
    ];
    await inNotebook(t, 'widgets-views', cells, { reset: true }, async (page, shown) => {
      // The finished baseline run: its totals, and its items with the failure first.
      const run = page.locator('.agiflow-w-run');
      await shown(run, 'EvalRunView');
      await expectText(run.getByTestId('agiflow-w-run-state'), 'succeeded');
      assert.match(await run.getByTestId('agiflow-w-run-facts').innerText(), /^4\/4 items · pass rate 75\.0% · 0 errors/);
      const items = run.getByTestId('agiflow-w-items').locator('tbody tr');
      await until(async () => (await items.count()) === seeded.items, 'the run\'s items');
      assert.equal(await items.first().locator('td').first().innerText(), 'fail', 'failures first');

      // The dataset's items, then only those the filter keeps (applied by the kernel).
      const dataset = page.locator('.agiflow-w-dataset');
      await shown(dataset, 'DatasetView');
      const rows = dataset.getByTestId('agiflow-w-dataset-items').locator('tbody tr');
      await until(async () => (await rows.count()) === seeded.items, 'the dataset\'s items');
      await dataset.getByTestId('agiflow-w-filter').fill('capital');
      await until(async () => (await rows.count()) === 1, 'the filtered items');
      assert.match(await rows.first().innerText(), /capital of France/);

      // The trace: its root's input and output; the chat span chosen with the keyboard shows its model.
      const trace = page.locator('.agiflow-w-trace');
      await shown(trace, 'TraceView');
      const spans = trace.getByTestId('agiflow-w-span-tree').locator('[role="treeitem"]');
      await until(async () => (await spans.count()) === 2, 'the span tree');
      await expectText(trace.getByTestId('agiflow-w-span-input'), seeded.trace.question);
      await expectText(trace.getByTestId('agiflow-w-span-output'), seeded.trace.answer);
      await spans.nth(1).focus();
      await page.keyboard.press('Enter');
      await trace.getByTestId('agiflow-w-span-detail').filter({ hasText: seeded.trace.model }).waitFor();

      // The metrics of the traces' project: every span counted.
      const metrics = page.locator('.agiflow-w-metrics');
      await shown(metrics, 'MetricsView');
      const count = metrics.locator('.agiflow-w-chart[data-measure="count"]');
      await count.filter({ hasText: `total ${seeded.spans}` }).waitFor({ timeout: 30_000 });
      await screenshotThemes(page, 'widgets-views');
    });
  });
});

/**
 * The PromptEditor scenario in `app` ('lab': JupyterLab, on a workspace of its own so no other scenario's
 * layout is restored; 'notebook': Notebook 7's notebook page). Its own prompt and notebook, deleted after.
 */
async function promptEditor(t, app) {
  const name = `widget-${app}-${randomUUID().slice(0, 8)}`;
  await api('POST', `projects/${env.project}/prompts`, { name, template: 'Tell {{who}} about {{topic}}.' });
  const cells = [
    `from agiflow_lab import Client\nfrom agiflow_lab.widgets import PromptEditor\n\nPromptEditor(Client(project=${JSON.stringify(env.project)}), ${JSON.stringify(name)})`
  ];
  // JupyterLab on a workspace of its own, so no other scenario's layout is restored; Notebook 7 has none.
  const [screen, where] =
    app === 'lab' ? ['widgets-prompt-editor', { reset: true }] : ['widgets-prompt-editor-notebook7', { app }];
  await inNotebook(t, screen, cells, where, async (page, shown) => {
    if (app === 'notebook') {
      const shell = await page.evaluate(() => window.jupyterapp.name);
      assert.equal(shell, 'Jupyter Notebook', 'the page is Notebook 7, not JupyterLab');
    }
    const widget = page.locator('.agiflow-w-prompt');
    await shown(widget, 'PromptEditor');

    const rendered = widget.getByTestId('agiflow-w-rendered');
    await expectText(rendered, 'Tell {{who}} about {{topic}}.');
    await widget.getByTestId('agiflow-w-var-who').fill('Ada');
    await widget.getByTestId('agiflow-w-var-topic').fill('widgets');
    await expectText(rendered, 'Tell Ada about widgets.');

    const template = widget.getByTestId('agiflow-w-template');
    await template.fill('Tell {{who}} about {{topic}}, briefly.');
    await expectText(rendered, 'Tell Ada about widgets, briefly.');
    await widget.getByTestId('agiflow-w-save').click();
    await expectText(widget.getByTestId('agiflow-w-status'), 'Saved v2');

    const saved = await api('GET', `projects/${env.project}/prompts/${name}?version=2`);
    assert.equal(saved.template, 'Tell {{who}} about {{topic}}, briefly.');
    await screenshotThemes(page, screen);
  });
}

/**
 * `cells` (each a code cell's source) as a notebook of its own, `<name>-<random>.ipynb`, opened with
 * `inLab` (`options` besides its name and path: `app`, `reset`) and run, then `scenario(page, shown)`:
 * `shown(locator, what)` waits for a widget to render, failing with the cell's error or the kernel's
 * state instead. The notebook is deleted afterwards.
 */
async function inNotebook(t, name, cells, options, scenario) {
  const notebook = `${name}-${randomUUID().slice(0, 8)}.ipynb`;
  await putNotebook(notebook, cells.map(source => ({ source })));
  const path = options.app === 'notebook' ? `/${notebook}` : `/tree/${notebook}`;
  await inLab(t, { ...options, name, path }, async page => {
    // Without the widget manager's and anywidget's frontends a cell shows only the widget's text.
    for (const plugin of WIDGET_PLUGINS) {
      const loaded = await page.evaluate(id => window.jupyterapp.hasPlugin(id), plugin);
      assert.ok(loaded, `${options.app ?? 'lab'} has no ${plugin}: is its labextension where Jupyter looks?`);
    }
    const panel = page.locator('.jp-NotebookPanel').filter({ has: page.locator('.jp-Cell') }).first();
    await panel.waitFor({ timeout: 60_000 });
    await runCells(page, panel);
    const error = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
    const shown = async (locator, what) => {
      await locator
        .or(error)
        .first()
        .waitFor({ timeout: 90_000 })
        .catch(async () => assert.fail(`no ${what} after 90 s; ${await cellState(page, panel)}`));
      if (await error.first().isVisible()) assert.fail(`a cell failed: ${await error.first().innerText()}`);
    };
    return scenario(page, shown);
  }).finally(() =>
    fetch(`${env.url}api/contents/${notebook}`, {
      method: 'DELETE',
      headers: { Authorization: `token ${env.token}` }
    }).catch(() => {})
  );
}

/**
 * Run the notebook's cells once its kernel is ready, asked through the app itself (the notebook's session
 * context), not by watching the status bar: a run asked for while the kernel still starts can be dropped,
 * so ask again until the cell's prompt says it ran or runs.
 */
async function runCells(page, panel) {
  await page.waitForFunction(() => window.jupyterapp?.commands.hasCommand('notebook:run-all-cells'), null, {
    timeout: 60_000
  });
  const prompt = panel.locator('.jp-Cell .jp-InputPrompt').first();
  for (let attempt = 0; attempt < 5; attempt++) {
    await page.evaluate(async () => {
      const widget = window.jupyterapp.shell.currentWidget;
      const session = widget?.context?.sessionContext ?? widget?.sessionContext;
      if (session) {
        await session.ready;
        const deadline = Date.now() + 90_000;
        while (session.session?.kernel?.status !== 'idle' && Date.now() < deadline) {
          await new Promise(resolve => session.statusChanged.connect(resolve));
        }
      }
    });
    await panel.locator('.jp-Cell').first().click();
    await page.evaluate(() => window.jupyterapp.commands.execute('notebook:run-all-cells'));
    const ran = await page
      .waitForFunction(el => /\[(\*|\d+)\]/.test(el.textContent), await prompt.elementHandle(), { timeout: 20_000 })
      .then(
        () => true,
        () => false
      );
    if (ran) return;
  }
  assert.fail('the notebook never ran its cell');
}

/** What the notebook shows and its kernel says, for a failure message: where a missing widget got stuck. */
async function cellState(page, panel) {
  const kernel = await page.evaluate(() => {
    const session = window.jupyterapp.shell.currentWidget?.context?.sessionContext;
    return `kernel ${session?.session?.kernel?.name ?? 'none'} ${session?.session?.kernel?.status ?? 'unknown'}`;
  });
  const prompt = await panel.locator('.jp-Cell .jp-InputPrompt').first().innerText();
  const outputs = await panel.locator('.jp-Cell .jp-OutputArea').first().innerText();
  return `${kernel}; prompt ${JSON.stringify(prompt)}; outputs ${JSON.stringify(outputs.slice(0, 2000))}`;
}

/** Wait until `locator`'s text is `text` (the kernel answers each change with a new render). */
async function expectText(locator, text) {
  await locator.filter({ hasText: text }).waitFor({ timeout: 30_000 }).catch(async () => {
    assert.fail(`expected ${JSON.stringify(text)}, the widget shows ${JSON.stringify(await locator.innerText())}`);
  });
  assert.equal((await locator.innerText()).trim(), text);
}
