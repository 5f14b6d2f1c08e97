// Browser test of the AGIFlow Traces and Dashboard views of the JupyterLab extension.
//
// Needs a running JupyterLab with agiflow-lab installed, the app exposed in the browser
// (`--LabApp.expose_app_in_browser=True`), a span writer, and (made beforehand, see tests/test_browser.py):
//   AGIFLOW_TRACES_PROJECT  a project holding only the seeded traces
//   AGIFLOW_TRACES          JSON list of them: {id, root, question, answer, model, status}
//   AGIFLOW_TRACES_SPANS    how many spans they have in all
//   AGIFLOW_BIG_PROJECT, AGIFLOW_BIG_TRACE, AGIFLOW_BIG_SPANS
//                           a project with one trace of more spans than one page (a root and its children)
// plus AGIFLOW_LAB_URL, AGIFLOW_LAB_TOKEN, CHROMIUM_PATH (see jobs.test.mjs).
// Run: node --test tests/browser/
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { closeBrowser, env, firstOf, inLab, openByCommand, screenshotThemes } from './support/lab.mjs';

const seeded = {
  project: process.env.AGIFLOW_TRACES_PROJECT ?? '',
  traces: JSON.parse(process.env.AGIFLOW_TRACES || '[]'),
  spans: Number(process.env.AGIFLOW_TRACES_SPANS || 0)
};
const failed = seeded.traces.find(t => t.status === 'error');
const answered = seeded.traces.find(t => t.status === 'ok' && t.model === 'gpt-4o');
const unpriced = seeded.traces.find(t => t.model === 'house-model');

const big = {
  project: process.env.AGIFLOW_BIG_PROJECT ?? '',
  trace: process.env.AGIFLOW_BIG_TRACE ?? '',
  spans: Number(process.env.AGIFLOW_BIG_SPANS || 0)
};

const skip =
  env.url === '/' || !seeded.project || !failed || !answered || !unpriced
    ? 'set AGIFLOW_LAB_URL and the AGIFLOW_TRACES* variables (see the header of this file)'
    : false;

describe('AGIFlow traces and dashboard in JupyterLab', () => {
  after(closeBrowser);

  /** A page on a workspace of its own, with failure screenshots named after `name`. */
  const withPage = (t, name, scenario) =>
    inLab(t, { name, workspace: `agiflow-${name}-test`, viewport: { width: 1440, height: 900 } }, scenario);

  test('the trace list filters by status and text; a trace opens as a span tree', { skip, timeout: 180_000 }, async t => {
    await withPage(t, 'traces', async page => {
      const view = await openByCommand(page, 'agiflow-lab-traces', 'agiflow-lab:open-traces');
      const project = view.getByTestId('agiflow-project-select');
      await firstOf(project, view);
      await project.selectOption(seeded.project);

      const rows = view.getByTestId('agiflow-trace-row');
      for (const trace of seeded.traces) {
        await firstOf(row(view, trace.id), view);
      }
      assert.equal(await rows.count(), seeded.traces.length, 'the project holds the seeded traces only');
      for (const trace of seeded.traces) {
        const r = row(view, trace.id);
        assert.equal(await r.getAttribute('data-status'), trace.status);
        assert.equal(await r.locator('.agiflow-status-chip').innerText(), trace.status);
        assert.equal(await r.locator('.agiflow-trace-spans').innerText(), trace.status === 'error' ? '2 (1✕)' : '2');
        assert.match(await r.locator('.agiflow-trace-models').innerText(), new RegExp(trace.model));
        assert.match(await r.locator('.agiflow-preview').innerText(), new RegExp(escape(trace.question)));
      }
      assert.equal(await row(view, unpriced.id).locator('.agiflow-trace-cost').innerText(), 'unpriced');
      assert.match(await row(view, answered.id).locator('.agiflow-trace-cost').innerText(), /^\$\d/);

      // status=error: the failed trace only.
      await view.getByTestId('agiflow-trace-status').selectOption('error');
      await row(view, answered.id).waitFor({ state: 'detached' });
      await row(view, unpriced.id).waitFor({ state: 'detached' });
      await row(view, failed.id).waitFor();
      assert.equal(await rows.count(), 1, 'status=error lists the failed trace only');
      await view.getByTestId('agiflow-trace-status').selectOption('ok');
      await row(view, failed.id).waitFor({ state: 'detached' });
      await row(view, answered.id).waitFor();
      assert.equal(await rows.count(), seeded.traces.length - 1, 'status=ok lists the others');
      await view.getByTestId('agiflow-trace-status').selectOption('');
      await row(view, failed.id).waitFor(); // the unfiltered list is back before the text filter is typed

      // Free text searches the input/output previews.
      await view.getByTestId('agiflow-trace-filter-text').fill('the news');
      await row(view, answered.id).waitFor({ state: 'detached' });
      await row(view, unpriced.id).waitFor();
      assert.equal(await rows.count(), 1, 'text filter');
      await view.getByTestId('agiflow-trace-filters-clear').click();
      await row(view, failed.id).waitFor();

      // Sessions: the traces' one session with its totals; a click lists its traces.
      await view.getByTestId('agiflow-tab-sessions').click();
      const session = view.getByTestId('agiflow-session-list').locator('tr[data-group-id="s-1"]');
      await firstOf(session, view);
      assert.match(await session.innerText(), new RegExp(`^s-1\\s+${seeded.traces.length}\\s+1\\s`));
      await session.locator('button').click();
      assert.equal(await view.getByTestId('agiflow-trace-filter-session').inputValue(), 's-1');
      await row(view, failed.id).waitFor();
      assert.equal(await rows.count(), seeded.traces.length);
      await view.getByTestId('agiflow-trace-filters-clear').click();

      // Open a trace: its span tree, the root selected with its input and output.
      await row(view, answered.id).getByTestId('agiflow-trace-open').click();
      const trace = view.locator(`[data-testid="agiflow-trace-view"][data-trace-id="${answered.id}"]`);
      const spans = trace.getByTestId('agiflow-span-row');
      await firstOf(spans.first(), view);
      assert.equal(await spans.count(), 2);
      assert.deepEqual(await spans.evaluateAll(els => els.map(e => e.dataset.depth)), ['0', '1']);
      assert.match(await spans.nth(0).innerText(), new RegExp(answered.root));
      assert.match(await spans.nth(1).innerText(), new RegExp(`chat ${answered.model}`));
      const detail = trace.getByTestId('agiflow-span-detail');
      assert.equal(await detail.getAttribute('data-span-id'), await spans.nth(0).getAttribute('data-span-id'));
      assert.equal(await detail.getByTestId('agiflow-span-input').innerText(), answered.question);
      assert.equal(await detail.getByTestId('agiflow-span-output').innerText(), answered.answer);
      assert.equal(await trace.getByTestId('agiflow-spans-more').count(), 0, 'one page holds both spans');

      // A score on the trace, added from the form, shows in its list.
      const scores = trace.getByTestId('agiflow-trace-scores');
      const scoreName = `helpfulness-${Date.now().toString(36)}`;
      await scores.getByTestId('agiflow-score-name').fill(scoreName);
      await scores.getByTestId('agiflow-score-value').fill('0.9');
      await scores.getByTestId('agiflow-score-comment').fill('right answer');
      await scores.getByTestId('agiflow-score-add').click();
      const score = scores.locator(`[data-testid="agiflow-score-row"][data-score-name="${scoreName}"]`);
      await firstOf(score, view);
      assert.match(await score.innerText(), new RegExp(`^${scoreName}\\s+0\\.9\\s+trace\\s+\\w+\\s+right answer`));

      // The chat call: model, tokens and a price.
      await spans.nth(1).click();
      await trace.locator(`[data-testid="agiflow-span-detail"][data-span-id="${await spans.nth(1).getAttribute('data-span-id')}"]`).waitFor();
      assert.equal(await detail.getByTestId('agiflow-span-model').innerText(), answered.model);
      assert.equal(await detail.getByTestId('agiflow-span-tokens').innerText(), '1,000 / 100');
      assert.match(await detail.getByTestId('agiflow-span-cost').innerText(), /^\$\d/);
      assert.ok((await detail.locator('.agiflow-json').count()) >= 2, 'attributes and resource attributes as JSON');

      // Add the chat span to a dataset that does not exist yet: it is created, with the span as its item.
      const dataset = `picked-${Date.now().toString(36)}`;
      await detail.getByTestId('agiflow-dataset-name').fill(dataset);
      await detail.getByTestId('agiflow-dataset-add').click();
      const added = detail.getByTestId('agiflow-dataset-added');
      await firstOf(added, view);
      assert.equal(await added.innerText(), `Added: ${dataset} v1 (1 item)`);

      // The failed trace: its chat span is the error, with the provider's message.
      await row(view, failed.id).getByTestId('agiflow-trace-open').click();
      const bad = view.locator(`[data-testid="agiflow-trace-view"][data-trace-id="${failed.id}"]`);
      const badSpans = bad.getByTestId('agiflow-span-row');
      await firstOf(badSpans.nth(1), view);
      assert.equal(await badSpans.nth(1).getAttribute('data-status'), 'error');
      assert.equal(await bad.getByTestId('agiflow-span-input').innerText(), failed.question);
      await badSpans.nth(1).click();
      assert.equal(await bad.getByTestId('agiflow-span-status-message').innerText(), 'provider said no');

      await screenshotThemes(page, 'traces');
    });
  });

  test('a big trace opened by its command args loads its spans a page at a time', { skip: skip || (!big.trace && 'set AGIFLOW_BIG_*'), timeout: 120_000 }, async t => {
    await withPage(t, 'big-trace', async page => {
      const view = await openByCommand(page, 'agiflow-lab-traces', 'agiflow-lab:open-traces', {
        project: big.project,
        traceId: big.trace
      });
      const trace = view.locator(`[data-testid="agiflow-trace-view"][data-trace-id="${big.trace}"]`);
      const spans = trace.getByTestId('agiflow-span-row');
      await firstOf(spans.first(), view);
      assert.equal(await view.getByTestId('agiflow-project-select').inputValue(), big.project);
      const more = trace.getByTestId('agiflow-spans-more');
      await more.waitFor();
      const first = await spans.count();
      assert.ok(first < big.spans, `the first page holds part of the trace (${first} of ${big.spans} spans)`);
      assert.deepEqual(
        await spans.evaluateAll(els => [...new Set(els.map(e => e.dataset.depth))]),
        ['0', '1'],
        'a root and its children'
      );

      // Scrolling to the end of the tree loads the rest, by itself.
      await more.scrollIntoViewIfNeeded();
      await spans.nth(big.spans - 1).waitFor();
      assert.equal(await spans.count(), big.spans);
      await more.waitFor({ state: 'detached' });
      const lastChild = `tool call ${String(big.spans - 2).padStart(3, '0')}`;
      assert.match(await spans.last().innerText(), new RegExp(lastChild), 'children in start order');
    });
  });

  test('the dashboard charts the spans, totals them and opens a recent error', { skip, timeout: 180_000 }, async t => {
    await withPage(t, 'dashboard', async page => {
      const view = await openByCommand(page, 'agiflow-lab-dashboard', 'agiflow-lab:open-dashboard');
      const project = view.getByTestId('agiflow-project-select');
      await firstOf(project, view);
      await project.selectOption(seeded.project);

      const tiles = view.getByTestId('agiflow-dashboard-tiles');
      const spansTile = tiles.getByTestId('agiflow-tile-spans').locator('.agiflow-tile-value');
      await firstOf(spansTile.filter({ hasText: new RegExp(`^${seeded.spans}$`) }), view);
      const errors = seeded.traces.filter(tr => tr.status === 'error').length;
      assert.equal(
        await tiles.getByTestId('agiflow-tile-error-rate').locator('.agiflow-tile-value').innerText(),
        `${Math.round((errors / seeded.spans) * 1000) / 10}%`
      );
      assert.equal(
        await tiles.getByTestId('agiflow-tile-tokens').locator('.agiflow-tile-value').innerText(),
        `${(1000 * seeded.traces.length).toLocaleString('en-US')} / ${100 * seeded.traces.length}`
      );
      assert.match(await tiles.getByTestId('agiflow-tile-cost').innerText(), /unpriced/);
      assert.notEqual(await tiles.getByTestId('agiflow-tile-p95').locator('.agiflow-tile-value').innerText(), '—');

      for (const chart of ['count', 'errors', 'latency', 'tokens', 'cost']) {
        const figure = view.getByTestId(`agiflow-chart-${chart}`);
        assert.equal(await figure.getAttribute('data-has-data'), 'true', `${chart} chart has data`);
        assert.ok((await figure.locator('svg title').count()) > 0, `${chart} chart has tooltips`);
      }
      const bars = view.getByTestId('agiflow-chart-count').locator('.agiflow-chart-bar');
      assert.ok((await bars.count()) > 0, 'the span count chart draws bars');
      const tooltips = await view.getByTestId('agiflow-chart-count').locator('svg title').allTextContents();
      const counted = tooltips.reduce((sum, text) => sum + Number(/spans: (\d+)/.exec(text)?.[1] ?? 0), 0);
      assert.equal(counted, seeded.spans, `the tooltips count every span: ${tooltips.join(' | ')}`);

      const workers = view.getByTestId('agiflow-workers-alive');
      await firstOf(workers, view);
      assert.ok(Number(await workers.innerText()) >= 1, 'the supervised worker is alive');

      // One series per model.
      await view.getByTestId('agiflow-dashboard-group-by').selectOption('model');
      const legend = view.getByTestId('agiflow-chart-count').locator('.agiflow-chart-legend li');
      await legend.filter({ hasText: unpriced.model }).waitFor();
      assert.deepEqual((await legend.allInnerTexts()).map(s => s.trim()).sort(), ['(none)', 'gpt-4o', 'house-model']);
      await view.getByTestId('agiflow-dashboard-group-by').selectOption('');

      await screenshotThemes(page, 'dashboard');

      // Recent errors: the failed trace; a click opens it in the traces view.
      const recent = view.getByTestId('agiflow-recent-error');
      await firstOf(recent.first(), view);
      assert.deepEqual(await recent.evaluateAll(els => els.map(e => e.dataset.traceId)), [failed.id]);
      await recent.first().click();
      const traces = page.locator('#agiflow-lab-traces');
      await traces.waitFor({ state: 'visible' });
      const opened = traces.locator(`[data-testid="agiflow-trace-view"][data-trace-id="${failed.id}"]`);
      await firstOf(opened.getByTestId('agiflow-span-row').nth(1), traces);
      assert.equal(await traces.getByTestId('agiflow-project-select').inputValue(), seeded.project);
    });
  });
});

function row(view, id) {
  return view.locator(`[data-testid="agiflow-trace-row"][data-trace-id="${id}"]`);
}

function escape(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
