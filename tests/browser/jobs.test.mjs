// Browser test of the AGIFlow Jobs view of the JupyterLab extension.
//
// Needs a running JupyterLab with agiflow-lab installed and at least one
// worker serving the project under test:
//   AGIFLOW_LAB_URL        base URL of the server, e.g. http://127.0.0.1:8888/
//   AGIFLOW_LAB_TOKEN      its token
//   AGIFLOW_PROJECT        project slug (default: "default")
//   CHROMIUM_PATH          browser binary (default: /usr/bin/chromium)
// Run: node --test tests/browser/
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { ARTIFACTS, CHROMIUM_ARGS, env, firstOf, hideToasts, openFromLauncher } from './support/lab.mjs';

const skip = env.url === '/' ? 'set AGIFLOW_LAB_URL (see the header of this file)' : false;

describe('AGIFlow jobs in JupyterLab', () => {
  let browser;

  after(async () => {
    await browser?.close();
  });

  test('a job submitted from the form turns succeeded live and shows its log', { skip, timeout: 180_000 }, async t => {
    browser ??= await chromium.launch({ executablePath: env.chromium, args: CHROMIUM_ARGS });
    await mkdir(ARTIFACTS, { recursive: true });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.on('pageerror', error => t.diagnostic(`page error: ${error.message}`));
    // Every jobs REST call the page makes: updates must come over the WebSocket, not polling.
    const jobRequests = [];
    page.on('request', request => {
      const url = new URL(request.url());
      if (url.pathname.includes('/agiflow/api/v1/projects/') && url.pathname.includes('/jobs')) {
        jobRequests.push(`${request.method()} ${url.pathname}${url.search}`);
      }
    });
    let socketUrl;
    page.on('websocket', socket => {
      if (socket.url().includes('/agiflow/api/v1/events')) {
        socketUrl = socket.url();
      }
    });
    try {
      // A workspace of its own: the prompts tests run at the same time in the default one.
      await page.goto(`${env.url}lab/workspaces/agiflow-jobs-test?token=${encodeURIComponent(env.token)}`);
      await page.locator('#jp-main-dock-panel').waitFor({ timeout: 60_000 });

      const view = await openFromLauncher(page, 'agiflow-lab-jobs', 'AGIFlow Jobs');
      const form = view.locator('.agiflow-job-submit');
      await firstOf(form, view);
      await view.getByTestId('agiflow-project-select').selectOption(env.project);
      await form.getByTestId('agiflow-job-notebook').selectOption('builtin:hello');
      await form.getByTestId('agiflow-job-parameters').fill('{"name": "Browser"}');
      await form.getByTestId('agiflow-job-run').click();

      // The new job is selected: its id is on the detail.
      const detail = view.locator('.agiflow-job-detail');
      await firstOf(detail, view);
      const jobId = await detail.getAttribute('data-job-id');
      assert.ok(jobId, 'the detail names the submitted job');

      const item = view.locator(`.agiflow-job-item[data-job-id="${jobId}"]`);
      await item.waitFor();
      assert.equal(
        await view.locator('.agiflow-job-item').first().getAttribute('data-job-id'),
        jobId,
        'the new job is first (newest first)'
      );
      const state = item.locator('.agiflow-job-state');
      await state.filter({ hasText: /^(succeeded|failed|cancelled)$/ }).waitFor({ timeout: 60_000 });
      assert.equal(await state.innerText(), 'succeeded', `job ${jobId} ended ${await state.innerText()}`);
      assert.match(await item.innerText(), /\b(\d+)\/\1\b/, 'the progress shows every cell done');

      const log = view.locator('.agiflow-job-log');
      await log.filter({ hasText: 'Hello, Browser!' }).waitFor({ timeout: 30_000 });
      assert.equal(await detail.locator('.agiflow-job-state').innerText(), 'succeeded');

      assert.ok(socketUrl, 'the view follows the events WebSocket');
      assert.match(socketUrl, new RegExp(`[?&]project=${env.project}(&|$)`));
      const lists = jobRequests.filter(r => /^GET \S+\/jobs\?/.test(r));
      assert.equal(lists.length, 1, `one list fetch, no polling: ${jobRequests.join(', ')}`);
      assert.equal(jobRequests.filter(r => r.startsWith('POST ')).length, 1, jobRequests.join(', '));

      await hideToasts(page);
      await page.screenshot({ path: join(ARTIFACTS, 'jobs.png') });

      // "Open report" copies the executed notebook into the files and opens it.
      await detail.locator('.agiflow-job-open').click();
      // Named after what ran (the notebook and the job), and opened clean: nothing to save.
      const reportTab = page
        .locator('#jp-main-dock-panel .lm-TabBar-tab')
        .filter({ hasText: `hello-${jobId.slice(0, 8)}.ipynb` });
      await reportTab.waitFor({ timeout: 30_000 });
      await reportTab.locator('xpath=self::*[not(contains(@class, "jp-mod-dirty"))]').waitFor({ timeout: 10_000 });
    } catch (error) {
      await page.screenshot({ path: join(ARTIFACTS, 'jobs-failure.png') }).catch(() => {});
      throw error;
    } finally {
      await context.close();
    }
  });
});

