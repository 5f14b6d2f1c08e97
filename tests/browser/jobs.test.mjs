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
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import {
  api,
  ARTIFACTS,
  closeBrowser,
  env,
  firstOf,
  hideToasts,
  inLab,
  openByCommand,
  openFromLauncher,
  putNotebook,
  screenshotThemes,
  until,
  watchTraffic
} from './support/lab.mjs';

const skip = env.url === '/' ? 'set AGIFLOW_LAB_URL (see the header of this file)' : false;

describe('AGIFlow jobs in JupyterLab', () => {
  after(closeBrowser);

  test('a job submitted from the form turns succeeded live and shows its log', { skip, timeout: 180_000 }, async t => {
    // Every jobs REST call the page makes: updates must come over the WebSocket, not polling.
    let traffic;
    const beforeLoad = page => {
      traffic = watchTraffic(page, '/jobs');
    };
    // A workspace of its own: the prompts tests run at the same time in the default one.
    const lab = { name: 'jobs', workspace: 'agiflow-jobs-test', viewport: { width: 1280, height: 800 }, beforeLoad };
    await inLab(t, lab, async page => {
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

      assert.ok(traffic.socketUrl, 'the view follows the events WebSocket');
      assert.match(traffic.socketUrl, new RegExp(`[?&]project=${env.project}(&|$)`));
      const lists = traffic.requests.filter(r => /^GET \S+\/jobs\?/.test(r));
      assert.equal(lists.length, 1, `one list fetch, no polling: ${traffic.requests.join(', ')}`);
      assert.equal(traffic.requests.filter(r => r.startsWith('POST ')).length, 1, traffic.requests.join(', '));

      await hideToasts(page);
      await screenshotThemes(page, 'jobs');

      // "Open report" copies the executed notebook into the files and opens it.
      await detail.locator('.agiflow-job-open').click();
      // Named after what ran (the notebook and the job), and opened clean: nothing to save.
      const reportTab = page
        .locator('#jp-main-dock-panel .lm-TabBar-tab')
        .filter({ hasText: `hello-${jobId.slice(0, 8)}.ipynb` });
      await reportTab.waitFor({ timeout: 30_000 });
      await reportTab.locator('xpath=self::*[not(contains(@class, "jp-mod-dirty"))]').waitFor({ timeout: 10_000 });
    });
  });

  test('a notebook in the file browser runs as a job with the parameters of its parameters cell', { skip, timeout: 180_000 }, async t => {
    const name = `run-me-${Date.now().toString(36)}.ipynb`;
    await putNotebook(name, [
      { source: ['who = "world"  # who to greet\n', 'times = 1'], tags: ['parameters'] },
      { source: 'print(f"Hello, {who}! x{times}")' }
    ]);
    const lab = { name: 'jobs-run-as-job', workspace: 'agiflow-run-as-job', viewport: { width: 1280, height: 800 } };
    await inLab(t, lab, async page => {
      await page.waitForFunction(() => window.jupyterapp?.commands.hasCommand('filebrowser:activate'), null, {
        timeout: 60_000
      });
      await page.evaluate(() => window.jupyterapp.commands.execute('filebrowser:activate'));
      const item = page.locator('.jp-DirListing-item').filter({ hasText: name });
      await item.waitFor({ timeout: 30_000 });
      await item.click({ button: 'right' });
      await page.locator('.lm-Menu-item').filter({ hasText: 'Run as AGIFlow job' }).click();

      // The parameters cell became the form: defaults filled in, its comment shown.
      const dialog = page.locator('.jp-Dialog');
      const form = dialog.getByTestId('agiflow-run-as-job');
      await form.waitFor();
      const who = form.locator('[data-parameter="who"]');
      assert.equal(await who.inputValue(), '"world"');
      await form.getByText('who to greet').waitFor();
      await form.locator('select').first().selectOption(env.project);
      await who.fill('"file browser"');
      await form.locator('[data-parameter="times"]').fill('2');
      await screenshotThemes(page, 'jobs-run-as-job');
      await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();

      // The job ran the notebook with those values, and its row says so.
      const query = `projects/${env.project}/jobs?notebook=${encodeURIComponent(`contents:${name}`)}`;
      const jobs = await until(
        async () => {
          const page_ = await api('GET', query);
          return page_.items.length > 0 ? page_.items : null;
        },
        'the job submitted from the dialog',
        60_000
      );
      assert.equal(jobs.length, 1);
      const job = jobs[0];
      assert.deepEqual(job.parameters, { who: 'file browser', times: 2 });
      const view = await openByCommand(page, 'agiflow-lab-jobs', 'agiflow-lab:open-jobs');
      await view.getByTestId('agiflow-project-select').selectOption(env.project);
      const row = view.locator(`[data-testid="agiflow-job-item"][data-job-id="${job.id}"]`);
      await row.waitFor({ timeout: 30_000 });
      await row.locator('.agiflow-job-state').filter({ hasText: 'succeeded' }).waitFor({ timeout: 120_000 });
      assert.match(await row.getByTestId('agiflow-job-params').innerText(), /who="file browser", times=2/);
      await row.click();
      await view.getByTestId('agiflow-job-log').filter({ hasText: 'Hello, file browser! x2' }).waitFor();
      await screenshotThemes(page, 'jobs-rows');
    });
  });

  test('a failed job reaches JupyterLab as a notification through the in-app channel', { skip, timeout: 180_000 }, async t => {
    const project = `notify-${Date.now().toString(36)}`;
    await api('POST', 'projects', { slug: project, name: 'Notifications' });
    await api('POST', `projects/${project}/notifications/channels`, { name: 'in-app', kind: 'in_app' });
    // The page reads the project's notifications once its socket is live: from then on, news is shown.
    let following;
    const beforeLoad = page => {
      following = page.waitForResponse(r => r.url().includes(`/projects/${project}/notifications?`), {
        timeout: 90_000
      });
    };
    const lab = { name: 'notifications', workspace: 'agiflow-notify', viewport: { width: 1280, height: 800 }, beforeLoad };
    await inLab(t, lab, async page => {
      await following;
      await api('POST', `projects/${project}/jobs`, { notebook: 'builtin:fail', max_attempts: 1 });
      const toast = page.locator('.Toastify__toast').filter({ hasText: 'Job builtin:fail failed' });
      await toast.first().waitFor({ timeout: 120_000 });
      await page.screenshot({ path: join(ARTIFACTS, 'notifications.png') }); // with the toast (themes would close it)
      await toast.first().getByRole('button', { name: 'Mark read' }).click();
      await until(
        async () => (await api('GET', `projects/${project}/notifications/unread`)).unread === 0,
        'the notification marked read'
      );
    });
  });
});
