// Browser test of the AGIFlow Evaluations view of the JupyterLab extension.
//
// Needs a running JupyterLab with agiflow-lab installed, at least one worker
// serving the project under test, and (made beforehand, see tests/test_browser.py):
//   AGIFLOW_EVALS_PROMPT   a text prompt "Q: {{question}}" (v1) with a v2 that changes the answers
//   AGIFLOW_EVALS_DATASET  a dataset whose items pass with v1 except one, which passes with v2 only
//   AGIFLOW_EVALS_RUN      id of a succeeded echo run of v1 on it (the baseline)
//   AGIFLOW_EVALS_ITEMS    the number of items (default 4)
// plus AGIFLOW_LAB_URL, AGIFLOW_LAB_TOKEN, AGIFLOW_PROJECT, CHROMIUM_PATH (see jobs.test.mjs).
// This test starts the second run itself, once the view follows the events socket, so the
// view is seen to pick up a new run and its progress live whatever the machine's speed.
// Run: node --test tests/browser/
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import {
  ARTIFACTS,
  closeBrowser,
  env,
  firstOf,
  hideToasts,
  inLab,
  openByCommand,
  openFromLauncher,
  screenshotThemes,
  watchTraffic
} from './support/lab.mjs';

const WIDE = { width: 1440, height: 900 }; // the run detail and the comparison side by side

const evals = {
  prompt: process.env.AGIFLOW_EVALS_PROMPT ?? '',
  dataset: process.env.AGIFLOW_EVALS_DATASET ?? '',
  baseline: process.env.AGIFLOW_EVALS_RUN ?? '',
  items: Number(process.env.AGIFLOW_EVALS_ITEMS || 4)
};

const skip =
  env.url === '/' || !evals.prompt || !evals.dataset || !evals.baseline
    ? 'set AGIFLOW_LAB_URL and the AGIFLOW_EVALS_* variables (see the header of this file)'
    : false;

describe('AGIFlow evaluations in JupyterLab', () => {
  after(closeBrowser);

  test('runs finish live with their pass rate; detail and compare show the items', { skip, timeout: 240_000 }, async t => {
    // Every evals REST call the page makes: updates must come over the WebSocket, not polling.
    let traffic;
    const beforeLoad = page => {
      traffic = watchTraffic(page, '/evals/');
    };
    await inLab(t, { name: 'evals', workspace: 'agiflow-evals-test', viewport: WIDE, beforeLoad }, async page => {

      const view = await openFromLauncher(page, 'agiflow-lab-evals', 'AGIFlow Evaluations');
      const project = view.getByTestId('agiflow-project-select');
      await firstOf(project, view);
      await project.selectOption(env.project);
      const list = view.getByTestId('agiflow-run-list');
      await firstOf(list, view);
      await view.getByTestId('agiflow-live').filter({ hasText: 'live' }).waitFor({ timeout: 30_000 });

      // The baseline run, made and finished before the page opened.
      const baseline = runRow(view, evals.baseline);
      await baseline.waitFor();
      assert.equal(await baseline.locator('.agiflow-job-state').innerText(), 'succeeded');
      assert.equal(await baseline.locator('.agiflow-run-pass-rate .agiflow-metric-value').innerText(), '75%');
      assert.equal(await baseline.getByTestId('agiflow-echo-badge').innerText(), 'built-in echo');
      assert.equal(await baseline.locator('.agiflow-run-cost .agiflow-metric-value').innerText(), '$0');

      // A second run, started now: the view must find it and follow it to the end by itself.
      const second = await startRun({
        name: `${evals.prompt} v2`,
        prompt: { name: evals.prompt, version: 2 },
        dataset: { name: evals.dataset },
        model: { connection: 'echo' },
        evaluators: [{ type: 'exact_match' }]
      });
      const row = runRow(view, second.id);
      await row.waitFor({ timeout: 120_000 });
      const state = row.locator('.agiflow-job-state');
      await state.filter({ hasText: /^(succeeded|failed|cancelled)$/ }).waitFor({ timeout: 120_000 });
      assert.equal(await state.innerText(), 'succeeded', `run ${second.id} ended ${await state.innerText()}`);
      assert.equal(
        await view.getByTestId('agiflow-run-item').first().getAttribute('data-run-id'),
        second.id,
        'the new run is first (newest first)'
      );
      assert.equal(await row.locator('.agiflow-job-progress-text').innerText(), `${evals.items}/${evals.items}`);
      await row.locator('.agiflow-run-pass-rate .agiflow-metric-value').filter({ hasText: /^25%$/ }).waitFor();
      await row.getByTestId('agiflow-echo-badge').waitFor();

      assert.ok(traffic.socketUrl, 'the view follows the events WebSocket');
      assert.match(traffic.socketUrl, new RegExp(`[?&]project=${env.project}(&|$)`));
      const lists = traffic.requests.filter(r => /^GET \S+\/evals\/runs\?/.test(r));
      assert.equal(lists.length, 1, `one list fetch, no polling: ${traffic.requests.join(', ')}`);
      const runGets = traffic.requests.filter(r => r.startsWith(`GET `) && r.includes(`/evals/runs/${second.id}`));
      assert.ok(runGets.length <= 3, `the new run fetched on its events only, not polled: ${runGets.join(', ')}`);
      assert.equal(
        traffic.requests.filter(r => r.includes(evals.baseline)).length,
        0,
        `a finished run's replayed events fetch nothing: ${traffic.requests.join(', ')}`
      );

      // The detail: what the run pinned, the per-evaluator table and the items.
      await row.locator('.agiflow-run-item').click();
      const detail = view.locator(`[data-testid="agiflow-run-detail"][data-run-id="${second.id}"]`);
      await firstOf(detail, view);
      const pinned = detail.getByTestId('agiflow-run-pinned');
      assert.match(await pinned.locator('.agiflow-run-prompt').innerText(), new RegExp(`^${evals.prompt} v2$`));
      assert.match(await pinned.locator('.agiflow-run-dataset').innerText(), new RegExp(`^${evals.dataset} v1$`));
      await pinned.locator('.agiflow-run-model').getByTestId('agiflow-echo-badge').waitFor();
      const evaluator = detail.getByTestId('agiflow-evaluator-table').locator('tr[data-evaluator="exact_match"]');
      assert.equal(await evaluator.locator('.agiflow-evaluator-pass-rate').innerText(), '25%');
      const results = detail.getByTestId('agiflow-result-table').locator('tbody tr');
      await firstOf(results.first(), detail);
      assert.equal(await results.count(), evals.items);
      assert.equal(await detail.locator('tbody tr[data-passed="false"]').count(), evals.items - 1);
      assert.equal(await detail.getByTestId('agiflow-results-more').count(), 0, 'one page holds every item');

      await detail.getByTestId('agiflow-failed-only').check();
      await detail.locator('tbody tr[data-passed="true"]').waitFor({ state: 'detached' });
      await results.first().waitFor(); // the failed-only page
      assert.equal(await results.count(), evals.items - 1, 'failed only');
      await detail.getByTestId('agiflow-failed-only').uncheck();
      await detail.locator('tbody tr[data-passed="true"]').waitFor();

      await hideToasts(page);
      await page.screenshot({ path: join(ARTIFACTS, 'evals.png') });

      // "Open report" copies the run's executed notebook into the files and opens it.
      await detail.getByTestId('agiflow-run-open').click();
      await page
        .locator('#jp-main-dock-panel .lm-TabBar-tab')
        .filter({ hasText: `-${second.id.slice(0, 8)}.ipynb` })
        .waitFor({ timeout: 60_000 });
      await page.locator('#jp-main-dock-panel .lm-TabBar-tab').filter({ hasText: 'AGIFlow Evaluations' }).click();

      // Compare: tick both runs; the baseline is the older one.
      await row.getByTestId('agiflow-run-check').check();
      await baseline.getByTestId('agiflow-run-check').check();
      const compare = view.getByTestId('agiflow-compare');
      await firstOf(compare.getByTestId('agiflow-compare-counts'), view);
      const count = async change =>
        Number(await compare.getByTestId(`agiflow-compare-${change}`).locator('.agiflow-count').innerText());
      assert.equal(await count('regressed'), evals.items - 1);
      assert.equal(await count('improved'), 1);
      assert.equal(await count('unchanged'), 0);
      const heads = compare.getByTestId('agiflow-compare-table').locator('thead th[data-run-id]');
      assert.deepEqual(await heads.evaluateAll(ths => ths.map(th => th.dataset.runId)), [evals.baseline, second.id]);
      const changed = compare.getByTestId('agiflow-changed-table').locator('tbody tr');
      await changed.first().waitFor();
      assert.equal(await changed.count(), evals.items);
      assert.equal(await compare.locator('tbody tr[data-change="improved"]').count(), 1);
      const improved = compare.locator('tbody tr[data-change="improved"]');
      assert.match(await improved.innerText(), /Q: [\s\S]*fail[\s\S]*A: [\s\S]*pass/, 'each run’s output and verdict');
      assert.equal(await compare.getByTestId('agiflow-echo-badge').count(), 2, 'echo labelled in both columns');

      await screenshotThemes(page, 'evals-compare');
    });
  });

  test('a run launched from the form finishes live, and re-run starts the form from it', { skip, timeout: 240_000 }, async t => {
    await inLab(t, { name: 'evals-launch', viewport: WIDE }, async page => {
      const view = await openByCommand(page, 'agiflow-lab-evals', 'agiflow-lab:open-evals');
      const project = view.getByTestId('agiflow-project-select');
      await firstOf(project, view);
      await project.selectOption(env.project);
      await view.getByTestId('agiflow-live').filter({ hasText: '● live' }).waitFor({ timeout: 30_000 });

      await view.getByTestId('agiflow-new-run').click();
      const form = view.getByTestId('agiflow-eval-launch');
      await form.getByTestId('agiflow-launch-prompt').locator(`option[value="${evals.prompt}"]`).waitFor({ state: 'attached' });
      await form.getByTestId('agiflow-launch-prompt').selectOption(evals.prompt);
      await form.getByTestId('agiflow-launch-label').fill('latest');
      await form.getByTestId('agiflow-launch-dataset').locator(`option[value="${evals.dataset}"]`).waitFor({ state: 'attached' });
      await form.getByTestId('agiflow-launch-dataset').selectOption(evals.dataset);
      await form.getByTestId('agiflow-launch-connection').selectOption('echo');
      await form.getByTestId('agiflow-launch-name').fill('launched from the form');
      await form.getByTestId('agiflow-launch-start').click();

      // The new run's detail opens and follows it to the end over the socket.
      const detail = view.getByTestId('agiflow-run-detail').filter({ hasText: 'launched from the form' });
      await firstOf(detail, view);
      await detail.locator('.agiflow-job-state').filter({ hasText: 'succeeded' }).waitFor({ timeout: 120_000 });
      const runId = await detail.getAttribute('data-run-id');
      const run = await (
        await fetch(`${env.url}agiflow/api/v1/projects/${env.project}/evals/runs/${runId}`, {
          headers: { Authorization: `token ${env.token}` }
        })
      ).json();
      assert.equal(run.prompt.ref, 'label:latest');
      assert.equal(run.aggregates.items_done, evals.items);
      await detail.getByTestId('agiflow-result-table').locator('[data-testid="agiflow-item-input"]').first().waitFor();
      await screenshotThemes(page, 'evals-launched');

      // Re-run: the form comes back filled from this run.
      await detail.getByTestId('agiflow-run-rerun').click();
      const again = view.getByTestId('agiflow-eval-launch');
      assert.equal(await again.getByTestId('agiflow-launch-name').inputValue(), 'launched from the form (re-run)');
      assert.equal(await again.getByTestId('agiflow-launch-label').inputValue(), 'latest');
      const datasetChoice = again.getByTestId('agiflow-launch-dataset');
      await datasetChoice.locator(`option[value="${evals.dataset}"]`).waitFor({ state: 'attached' });
      assert.equal(await datasetChoice.inputValue(), evals.dataset);
      await screenshotThemes(page, 'evals-launch-form');
    });
  });
});

function runRow(view, id) {
  return view.locator(`[data-testid="agiflow-run-item"][data-run-id="${id}"]`);
}

/** Start an evaluation run through the REST API, as a notebook or CI would. */
async function startRun(body) {
  const response = await fetch(`${env.url}agiflow/api/v1/projects/${env.project}/evals/runs`, {
    method: 'POST',
    headers: { Authorization: `token ${env.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body)
  });
  const text = await response.text();
  assert.equal(response.status, 201, text);
  return JSON.parse(text);
}
