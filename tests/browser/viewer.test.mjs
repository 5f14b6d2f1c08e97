// Browser test of what a project's viewer sees: every view of a project they only read, with no control
// that would write (and the API refusing the write anyway, asked from the same signed-in page).
//
// Needs a running JupyterLab with agiflow-lab installed whose identity provider signs a browser in as
// `<name>` from `?token=user-<name>` (tests/support/identity.py), the app exposed as `window.jupyterapp`:
//   AGIFLOW_LAB_URL    base URL of the server, e.g. http://127.0.0.1:8888/
//   AGIFLOW_LAB_TOKEN  its token (the server's owner, who seeds the project)
//   CHROMIUM_PATH      browser binary (default: /usr/bin/chromium)
// Run: node --test tests/browser/
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { api, closeBrowser, env, firstOf, inLab, openByCommand, screenshotThemes } from './support/lab.mjs';

const skip = env.url === '/' ? 'set AGIFLOW_LAB_URL (see the header of this file)' : false;
const unique = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const project = `viewed-${unique}`;
const viewer = `vera-${unique}`;
const prompt = 'greeting';
const dataset = 'questions';

describe('AGIFlow for a project viewer in JupyterLab', () => {
  after(closeBrowser);

  test('a viewer reads every view with no write control, and a write from the page is refused', { skip, timeout: 240_000 }, async t => {
    // The owner makes the project and its content, then adds the viewer.
    await api('POST', 'projects', { slug: project, name: `Viewed ${unique}` });
    await api('POST', `projects/${project}/prompts`, { name: prompt, template: 'Hello {{who}}', labels: ['production'] });
    await api('POST', `projects/${project}/datasets`, {
      name: dataset,
      items: [{ id: 'sum', input: { question: '2+2?' }, expected: '4' }]
    });
    await api('PUT', `projects/${project}/members/${viewer}`, { role: 'viewer' });

    // Signed in as the viewer: the token in the URL, then Jupyter's login cookie.
    await inLab(t, { name: 'viewer', token: `user-${viewer}`, reset: true }, async page => {
      // Prompts: the detail and its labels, no New version / Try it / Archive / label moves / New prompt.
      const prompts = await open(page, 'prompts');
      const item = prompts.locator('.agiflow-prompt-item').filter({ has: page.getByText(prompt, { exact: true }) });
      await firstOf(item, prompts);
      await item.click();
      const detail = prompts.locator('.agiflow-prompt-detail');
      await firstOf(detail.getByTestId('agiflow-sdk-snippet'), detail);
      await detail.getByTestId('agiflow-tool-labels').click();
      await detail.locator('[data-testid="agiflow-label-row"][data-label="production"]').waitFor();
      await absent(prompts, ['agiflow-new-prompt', 'agiflow-tool-edit', 'agiflow-tool-try', 'agiflow-label-move',
        'agiflow-label-rollback']); // prettier-ignore
      assert.equal(await detail.getByRole('button', { name: 'Archive' }).count(), 0, 'no Archive button');
      await screenshotThemes(page, 'viewer-prompts');

      // Datasets: the items, no create / import / add / edit / delete.
      const datasets = await open(page, 'datasets');
      const row = datasets.locator(`[data-testid="agiflow-dataset-item"][data-dataset="${dataset}"]`);
      await firstOf(row, datasets);
      await row.click();
      await datasets.locator('[data-testid="agiflow-item-row"][data-item-id="sum"]').waitFor();
      await absent(datasets, ['agiflow-dataset-create', 'agiflow-dataset-import', 'agiflow-item-add',
        'agiflow-item-edit', 'agiflow-item-delete']); // prettier-ignore

      // Evaluations: no New run. Models: no New connection, no Test. Schedules: no New schedule.
      const evals = await open(page, 'evals');
      await evals.getByTestId('agiflow-compare-hint').waitFor();
      await absent(evals, ['agiflow-new-run']);
      const models = await open(page, 'models');
      await models.getByText('Only the project\'s owners add or change connections').waitFor();
      await absent(models, ['agiflow-model-new', 'agiflow-model-edit', 'agiflow-model-test-open']);
      const schedules = await open(page, 'schedules');
      await schedules.getByText('Only the project\'s editors and owners add or change schedules.').waitFor();
      await absent(schedules, ['agiflow-schedule-new', 'agiflow-schedule-edit', 'agiflow-schedule-delete']);

      // Settings: the members with the viewer's own role; keys and the audit log say who may see them
      // (not an error: they are not asked for); nothing to add, change or revoke.
      const settings = await open(page, 'settings');
      await settings.getByTestId('agiflow-member-row').filter({ hasText: viewer }).filter({ hasText: 'viewer' }).waitFor();
      await settings.getByTestId('agiflow-keys-owners-only').waitFor();
      await settings.getByTestId('agiflow-audit-editors-only').waitFor();
      assert.equal(await settings.locator('.agiflow-error').count(), 0, await settings.innerText());
      await absent(settings, ['agiflow-member-add', 'agiflow-key-create', 'agiflow-key-revoke']);
      await screenshotThemes(page, 'viewer-settings');

      // The API refuses the write anyway, asked with the page's own session (cookie and XSRF token).
      const refused = await page.evaluate(
        async ([base, slug, name]) => {
          const xsrf = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/)?.[1] ?? '';
          const response = await fetch(`${base}agiflow/api/v1/projects/${slug}/prompts/${name}/versions`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', 'X-XSRFToken': decodeURIComponent(xsrf) },
            body: JSON.stringify({ template: 'Goodbye {{who}}' })
          });
          return { status: response.status, body: await response.json() };
        },
        [new URL(env.url).pathname, project, prompt]
      );
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'forbidden', JSON.stringify(refused.body));
      const latest = await api('GET', `projects/${project}/prompts/${prompt}?label=latest`);
      assert.equal(latest.version, 1, 'nothing was written');
    });
  });
});

/** Open AGIFlow's `name` view and choose the viewed project in it. */
async function open(page, name) {
  const view = await openByCommand(page, `agiflow-lab-${name}`, `agiflow-lab:open-${name}`);
  const select = view.getByTestId('agiflow-project-select');
  await firstOf(select, view);
  await select.selectOption(project);
  // The view's tools are in JupyterLab's toolbar above it, and it draws no title row of its own.
  await view.locator('.jp-Toolbar [data-testid="agiflow-reload"]').waitFor();
  assert.equal(await view.locator('.agiflow-title').count(), 0, `${name} draws no title row of its own`);
  return view;
}

/** None of the test ids is anywhere in `scope`. */
async function absent(scope, testIds) {
  for (const id of testIds) {
    assert.equal(await scope.getByTestId(id).count(), 0, `a viewer sees no ${id}`);
  }
}
