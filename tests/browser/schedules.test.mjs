// Browser test of the AGIFlow Schedules view.
//
// Needs a running JupyterLab with agiflow-lab installed (the app exposed as `window.jupyterapp`) and a worker:
//   AGIFLOW_LAB_URL        base URL of the server, e.g. http://127.0.0.1:8888/
//   AGIFLOW_LAB_TOKEN      its token (the server's owner)
//   CHROMIUM_PATH          browser binary (default: /usr/bin/chromium)
// Run: node --test tests/browser/
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { api, closeBrowser, env, firstOf, hideToasts, inLab, openByCommand, screenshotThemes } from './support/lab.mjs';

const skip = env.url === '/' ? 'set AGIFLOW_LAB_URL (see the header of this file)' : false;
const unique = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

describe('AGIFlow schedules in JupyterLab', () => {
  after(closeBrowser);

  test('an interval schedule made in the form: listed with its next ticks, run now, paused; a bad cron named', { skip, timeout: 180_000 }, async t => {
    // A project of its own: the job "run now" starts must not land among the Jobs scenario's.
    const project = `sched-${unique()}`;
    await api('POST', 'projects', { slug: project, name: 'Schedules' });
    await inLab(t, { name: 'schedules', viewport: { width: 1400, height: 900 } }, async page => {
      const press = async locator => {
        await hideToasts(page);
        await locator.click();
      };
      const view = await openByCommand(page, 'agiflow-lab-schedules', 'agiflow-lab:open-schedules');
      const select = view.getByTestId('agiflow-project-select');
      await firstOf(select, view);
      await select.selectOption(project);
      await view.getByText('No schedules in this project.').waitFor();

      // Create: builtin:hello every hour (no tick fires during the test: only "run now" does).
      const name = `hourly-${unique()}`;
      await press(view.getByTestId('agiflow-schedule-new'));
      const form = view.getByTestId('agiflow-schedule-form');
      await form.getByTestId('agiflow-schedule-name').fill(name);
      await form.getByTestId('agiflow-schedule-target').selectOption('job');
      await form.getByTestId('agiflow-schedule-notebook').fill('builtin:hello');
      await form.getByTestId('agiflow-schedule-parameters').fill('{"name": "Schedule"}');
      await form.getByTestId('agiflow-schedule-timing').selectOption('interval');
      await form.getByTestId('agiflow-schedule-interval').fill('3600');
      await form.getByTestId('agiflow-schedule-overlap').selectOption('skip');
      await press(form.getByTestId('agiflow-schedule-save'));
      await form.waitFor({ state: 'detached' });

      // Listed: what it runs, its timing, active, and the next fire times the API computed.
      const row = view.locator(`[data-testid="agiflow-schedule-row"][data-schedule="${name}"]`);
      await firstOf(row, view);
      const made = await api('GET', `projects/${project}/schedules/${name}`);
      assert.equal(made.interval_seconds, 3600);
      assert.equal(made.overlap, 'skip');
      assert.deepEqual(made.job.parameters, { name: 'Schedule' });
      assert.equal(await row.getByTestId('agiflow-schedule-target-text').innerText(), 'Notebook job: builtin:hello');
      assert.equal(await row.getByTestId('agiflow-schedule-timing-text').innerText(), 'every 1 h');
      assert.equal(await row.getByTestId('agiflow-schedule-state').innerText(), 'active');
      const next = row.getByTestId('agiflow-schedule-next');
      assert.equal(made.next_fire_times.length, 5);
      for (const at of made.next_fire_times) {
        await next.locator(`li[title="${at}"]`).waitFor();
      }
      assert.match(await next.locator('li').first().innerText(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(in (59 min|1 h)/);
      assert.equal(await row.getByTestId('agiflow-schedule-last').innerText(), 'never');

      // Run now: the history opens with the manual firing and the job it started.
      await press(row.getByTestId('agiflow-schedule-run'));
      const history = view.locator(`[data-testid="agiflow-schedule-firings"][data-schedule="${name}"]`);
      await firstOf(history, view);
      const firing = history.locator('[data-testid="agiflow-schedule-firing"][data-manual="true"][data-outcome="started"]');
      await firing.waitFor();
      const jobId = await firing.getAttribute('data-job-id');
      assert.ok(jobId, 'the firing names the job it started');
      const job = await api('GET', `projects/${project}/jobs/${jobId}`);
      assert.equal(job.notebook, 'builtin:hello');
      assert.deepEqual(job.parameters, { name: 'Schedule' });
      assert.match(await firing.getByTestId('agiflow-schedule-firing-job').innerText(), new RegExp(`job ${jobId.slice(0, 8)}`));
      assert.equal(await firing.getByTestId('agiflow-schedule-firing-outcome').innerText(), 'run now: started');
      await row.getByTestId('agiflow-schedule-last').filter({ hasText: 'run now: started' }).waitFor();

      // Edit: every two hours now; the target (and its parameters) unchanged, the next ticks re-timed.
      await press(row.getByTestId('agiflow-schedule-edit'));
      const editForm = view.getByTestId('agiflow-schedule-form');
      assert.equal(await editForm.getByTestId('agiflow-schedule-interval').inputValue(), '3600');
      await editForm.getByTestId('agiflow-schedule-interval').fill('7200');
      await press(editForm.getByTestId('agiflow-schedule-save'));
      await editForm.waitFor({ state: 'detached' });
      await row.getByTestId('agiflow-schedule-timing-text').filter({ hasText: 'every 2 h' }).waitFor();
      const edited = await api('GET', `projects/${project}/schedules/${name}`);
      assert.equal(edited.interval_seconds, 7200);
      assert.deepEqual(edited.job.parameters, { name: 'Schedule' });
      await next.locator(`li[title="${edited.next_fire_times[0]}"]`).waitFor();

      // Pause, from the keyboard: paused, no next fire times.
      await hideToasts(page);
      await row.getByTestId('agiflow-schedule-pause').focus();
      await page.keyboard.press('Enter');
      await view.locator(`[data-testid="agiflow-schedule-row"][data-schedule="${name}"][data-paused="true"]`).waitFor();
      assert.equal(await row.getByTestId('agiflow-schedule-state').innerText(), 'paused');
      assert.equal(await next.innerText(), '—');
      assert.equal(await row.getByTestId('agiflow-schedule-resume').count(), 1, 'a paused schedule offers Resume');
      const paused = await api('GET', `projects/${project}/schedules/${name}`);
      assert.equal(paused.paused, true);
      assert.equal(paused.next_fire_at, null);
      await screenshotThemes(page, 'schedules');

      // A bad cron expression: the API's message next to the cron field, nothing created.
      const bad = `bad-${unique()}`;
      await press(view.getByTestId('agiflow-schedule-new'));
      await form.getByTestId('agiflow-schedule-name').fill(bad);
      await form.getByTestId('agiflow-schedule-timing').selectOption('cron');
      await form.getByTestId('agiflow-schedule-cron').fill('61 * * * *');
      await form.getByTestId('agiflow-schedule-timezone').fill('UTC');
      await press(form.getByTestId('agiflow-schedule-save'));
      const cronError = form.getByTestId('agiflow-schedule-error-cron');
      await cronError.waitFor();
      assert.match(await cronError.innerText(), /not a valid cron expression/);
      assert.equal(await form.getByTestId('agiflow-schedule-cron').getAttribute('aria-invalid'), 'true');
      const listed = await api('GET', `projects/${project}/schedules`);
      assert.deepEqual(
        listed.items.map(s => s.name),
        [name],
        'the refused schedule was not created'
      );

      await screenshotThemes(page, 'schedules-form');
    });
  });
});
