// Browser tests of the AGIFlow managing views: Datasets, Models and Project settings.
//
// Needs a running JupyterLab with agiflow-lab installed (the app exposed as `window.jupyterapp`):
//   AGIFLOW_LAB_URL          base URL of the server, e.g. http://127.0.0.1:8888/
//   AGIFLOW_LAB_TOKEN        its token (the server's owner)
//   AGIFLOW_PROJECT          project slug (default: "default")
//   AGIFLOW_SCRIPTED_LLM_URL the scripted OpenAI-compatible server (tests/support/scripted_llm.py), for Models
//   CHROMIUM_PATH            browser binary (default: /usr/bin/chromium)
// Run: node --test tests/browser/
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { closeBrowser, env, firstOf, hideToasts, inLab, openByCommand, screenshotThemes } from './support/lab.mjs';

const skip = env.url === '/' ? 'set AGIFLOW_LAB_URL (see the header of this file)' : false;
const llmUrl = process.env.AGIFLOW_SCRIPTED_LLM_URL ?? '';
// Each scenario like the others: skipped without a server, three minutes at most.
const slow = { skip, timeout: 180_000 };
const withLlm = { skip: skip || (llmUrl ? false : 'set AGIFLOW_SCRIPTED_LLM_URL'), timeout: 180_000 };
const unique = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

describe('AGIFlow managing views in JupyterLab', () => {
  after(closeBrowser);

  /** A page of its own (own workspace: other scenarios run at the same time) with `view` opened. */
  function withView(t, name, body) {
    return inLab(t, { name, workspace: `agiflow-manage-${name}` }, async page => {
      const view = await openByCommand(page, `agiflow-lab-${name}`, `agiflow-lab:open-${name}`);
      const select = view.getByTestId('agiflow-project-select');
      await firstOf(select, view);
      await select.selectOption(env.project);
      await body(page, view);
    });
  }

  /** Click, first closing the toasts (JupyterLab's news question, ours after each write) that may cover it. */
  async function press(page, locator) {
    await hideToasts(page);
    await locator.click();
  }

  /** The items table once it holds the rows `ids` and none of `absent`. */
  function itemTable(scope, ids, absent = []) {
    const has = ids.map(id => `:has([data-item-id="${id}"])`).join('');
    const hasNot = absent.map(id => `:not(:has([data-item-id="${id}"]))`).join('');
    return scope.locator(`[data-testid="agiflow-item-table"]${has}${hasNot}`);
  }

  /** Accept JupyterLab's confirmation dialog with its warn button labelled `label`. */
  async function confirm(page, label) {
    const dialog = page.locator('.jp-Dialog');
    await dialog.waitFor();
    await dialog.locator('.jp-Dialog-button.jp-mod-warn').filter({ hasText: label }).click();
    await dialog.waitFor({ state: 'detached' });
  }

  test('settings: a key is created, its secret shown once, revoked, and audited', slow, async t => {
    await withView(t, 'settings', async (page, view) => {
      const name = `browser key ${unique()}`;
      const form = view.getByTestId('agiflow-key-create');
      await firstOf(form, view);
      await form.getByTestId('agiflow-key-name').fill(name);
      await form.getByTestId('agiflow-key-role').selectOption('editor');
      await press(page, form.getByRole('button', { name: 'Create key' }));

      const secretBox = view.getByTestId('agiflow-key-secret');
      await firstOf(secretBox, view);
      const secret = (await secretBox.getByTestId('agiflow-key-secret-value').innerText()).trim();
      assert.ok(secret.length >= 20, `a whole key is shown: ${secret}`);
      const row = view.getByTestId('agiflow-key-row').filter({ hasText: name });
      await row.waitFor();
      assert.ok(!(await row.innerText()).includes(secret), 'the list never shows the secret');
      assert.equal(await row.locator('td').nth(2).innerText(), 'editor');

      // Closed: gone for good (not on the page, not in the list).
      await press(page, secretBox.getByTestId('agiflow-key-secret-close'));
      await secretBox.waitFor({ state: 'detached' });
      assert.ok(!(await view.innerText()).includes(secret), 'the secret is gone once closed');

      await press(page, row.getByTestId('agiflow-key-revoke'));
      await confirm(page, 'Revoke');
      await row.getByTestId('agiflow-key-revoked').waitFor();
      assert.equal(await row.getByTestId('agiflow-key-revoke').count(), 0, 'a revoked key has no Revoke button');

      // The audit log names both writes, newest first.
      const audit = view.getByTestId('agiflow-audit-row');
      await audit.filter({ hasText: 'key.revoke' }).first().waitFor();
      await audit.filter({ hasText: 'key.create' }).first().waitFor();
      const actions = await audit.evaluateAll(trs => trs.map(tr => tr.innerText));
      const revoked = actions.findIndex(text => text.includes('key.revoke'));
      assert.ok(revoked < actions.findIndex(text => text.includes('key.create')), 'newest first');

      await screenshotThemes(page, 'settings');
    });
  });

  test('datasets: a CSV row refused by number; items added and deleted make new versions', slow, async t => {
    await withView(t, 'datasets', async (page, view) => {
      const name = `browser-ds-${unique()}`;
      const create = view.getByTestId('agiflow-dataset-create');
      await firstOf(create, view);
      await create.getByTestId('agiflow-dataset-name').fill(name);
      await press(page, create.getByTestId('agiflow-dataset-create-button'));
      const detail = view.locator(`[data-testid="agiflow-dataset-detail"][data-dataset="${name}"]`);
      await firstOf(detail, view);
      const latest = version => detail.locator(`[data-testid="agiflow-dataset-latest"][data-version="${version}"]`);
      await latest(0).waitFor();

      // Row 2 has two fields for a three-column header: refused, named, and nothing is written.
      const upload = detail.getByTestId('agiflow-dataset-import');
      await press(page, upload.locator('summary'));
      const file = upload.getByTestId('agiflow-import-file');
      const bad = 'id,question,expected\na,2+2?,4\nb,oops\nc,capital of France?,Paris\n';
      await file.setInputFiles({ name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from(bad) });
      await upload.getByTestId('agiflow-import-columns').filter({ hasText: 'id, question, expected' }).waitFor();
      await press(page, upload.getByTestId('agiflow-import-upload'));
      const refused = upload.locator('[data-testid="agiflow-import-error"][data-row="2"]');
      await refused.waitFor();
      assert.match(await refused.innerText(), /row 2[\s\S]*row has 2 fields; the header has 3/);
      assert.equal(await upload.getByTestId('agiflow-import-error').count(), 1, 'only the bad row is named');
      assert.equal(await latest(0).count(), 1, 'nothing written');

      // The corrected file, its `answer` column mapped as the expected output: version 1.
      const good = 'id,question,answer\na,2+2?,4\nc,capital of France?,Paris\n';
      await file.setInputFiles({ name: 'good.csv', mimeType: 'text/csv', buffer: Buffer.from(good) });
      await upload.getByTestId('agiflow-import-expected').fill('answer');
      await press(page, upload.getByTestId('agiflow-import-upload'));
      await latest(1).waitFor();
      const rows = detail.getByTestId('agiflow-item-row');
      await detail.getByRole('heading', { name: 'Items of v1' }).waitFor();
      await itemTable(detail, ['a', 'c']).waitFor();
      assert.deepEqual(await rows.evaluateAll(trs => trs.map(tr => tr.dataset.itemId)), ['a', 'c']);
      assert.match(await detail.locator('[data-item-id="c"]').innerText(), /capital of France\?[\s\S]*Paris/);

      // Add an item: version 2, shown.
      await press(page, detail.getByTestId('agiflow-item-add'));
      const editor = detail.getByTestId('agiflow-item-editor');
      await editor.getByTestId('agiflow-item-id').fill('sky');
      await editor.getByTestId('agiflow-item-input').fill('{"question": "colour of the sky?"}');
      await editor.getByTestId('agiflow-item-expected').fill('blue');
      await press(page, editor.getByTestId('agiflow-item-save'));
      await latest(2).waitFor();
      await detail.getByTestId('agiflow-dataset-written').filter({ hasText: 'v2' }).waitFor();
      const added = detail.locator('[data-testid="agiflow-item-row"][data-item-id="sky"]');
      await added.waitFor();
      assert.match(await added.innerText(), /colour of the sky\?[\s\S]*blue/);

      // Delete it (confirmed): version 3, without it.
      await press(page, added.getByTestId('agiflow-item-delete'));
      await confirm(page, 'Delete');
      await latest(3).waitFor();
      await detail.getByTestId('agiflow-dataset-written').filter({ hasText: 'v3' }).waitFor();
      // The table reloads with the version shown: wait for the one without the deleted item.
      await detail.getByRole('heading', { name: 'Items of v3' }).waitFor();
      await itemTable(detail, ['a', 'c'], ['sky']).waitFor();
      assert.deepEqual(await rows.evaluateAll(trs => trs.map(tr => tr.dataset.itemId)), ['a', 'c']);
      const exportLink = await detail.getByTestId('agiflow-dataset-export').getAttribute('href');
      assert.match(exportLink, /\/datasets\/[^/]+\/export\?version=3&format=jsonl$/);

      await screenshotThemes(page, 'datasets');
    });
  });

  test('models: a connection to the scripted LLM keeps its key write-only; Test shows the answer', withLlm, async t => {
    await withView(t, 'models', async (page, view) => {
      const name = `scripted-${unique()}`;
      const secret = `sk-browser-${unique()}${unique()}`;
      const create = view.getByTestId('agiflow-model-new');
      await firstOf(create, view);
      await press(page, create);
      const form = view.getByTestId('agiflow-model-form');
      await form.getByTestId('agiflow-model-name').fill(name);
      await form.getByTestId('agiflow-model-kind').selectOption('openai');
      await form.getByTestId('agiflow-model-base-url').fill(`${llmUrl}/v1`);
      await form.getByTestId('agiflow-model-default-model').fill('gpt-4o-mini');
      await form.getByTestId('agiflow-model-api-key').fill(secret);
      await press(page, form.getByTestId('agiflow-model-save'));
      await form.waitFor({ state: 'detached' });

      const row = view.locator(`[data-testid="agiflow-model-row"][data-connection="${name}"]`);
      await firstOf(row, view);
      assert.match(await row.innerText(), /openai[\s\S]*gpt-4o-mini[\s\S]*stored/);

      // Editing: the key field is empty (never shown back) and says an empty field keeps it.
      await press(page, row.getByTestId('agiflow-model-edit'));
      const key = view.getByTestId('agiflow-model-form').getByTestId('agiflow-model-api-key');
      assert.equal(await key.inputValue(), '');
      assert.equal(await key.getAttribute('placeholder'), 'leave empty to keep the current key');
      assert.ok(!(await view.innerText()).includes(secret), 'the key is nowhere on the page');
      await press(page, view.getByTestId('agiflow-model-form').getByRole('button', { name: 'Cancel' }));

      // Test: one completion through the connection (the scripted server echoes the prompt).
      await press(page, row.getByTestId('agiflow-model-test-open'));
      const panel = view.getByTestId('agiflow-model-test-panel');
      await panel.getByTestId('agiflow-model-test-prompt').fill('Hello from the browser');
      await press(page, panel.getByTestId('agiflow-model-test'));
      const result = panel.getByTestId('agiflow-model-test-result');
      await firstOf(result, view);
      assert.equal(await result.getAttribute('data-ok'), 'true', await result.innerText());
      assert.equal(await panel.getByTestId('agiflow-model-test-output').innerText(), 'Hello from the browser');
      assert.match(await result.innerText(), /gpt-4o-mini · \d+ ms · \d+ tokens in, \d+ out/);

      await screenshotThemes(page, 'models');
    });
  });
});
