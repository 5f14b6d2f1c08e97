// Browser test of the AGIFlow Lab JupyterLab extension.
//
// Needs a running JupyterLab with agiflow-lab installed and a prompt created
// beforehand in the project under test:
//   AGIFLOW_LAB_URL        base URL of the server, e.g. http://127.0.0.1:8888/
//   AGIFLOW_LAB_TOKEN      its token
//   AGIFLOW_EXPECT_PROMPT  name of a prompt that exists in the project
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
  screenshotThemes,
  tabTo
} from './support/lab.mjs';

const skip =
  env.url === '/' || !env.prompt
    ? 'set AGIFLOW_LAB_URL and AGIFLOW_EXPECT_PROMPT (see the header of this file)'
    : false;

describe('AGIFlow prompts in JupyterLab', () => {
  // Set up lazily inside the tests, so a failure there is a failed test, not a cancelled suite.
  let expected;

  after(closeBrowser);

  test('the sidebar lists the prompt and shows the template of its latest version', { skip, timeout: 120_000 }, async t => {
    await withPage(t, 'prompts', async page => {
      // A restored layout may already show the panel, or show it just after we look: a click then
      // closes it. So look, click only if hidden, and look again, a few times.
      const panel = page.locator('#agiflow-lab-sidebar');
      const tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="agiflow-lab-sidebar"]');
      for (let i = 0; i < 5 && !(await panel.isVisible()); i++) {
        await tab.click();
        await panel.waitFor({ state: 'visible', timeout: 3_000 }).catch(() => {});
      }
      await panel.waitFor({ state: 'visible' });
      await openPrompt(page, panel);
      // The sidebar shows one thing at a time: the list gives way to the detail.
      await checkDetail(panel.locator('.agiflow-prompt-detail'), expected);
    });
  });

  test('the launcher item opens the same view in the main area', { skip, timeout: 120_000 }, async t => {
    await withPage(t, 'prompts-main', async page => {
      const card = page
        .locator('.jp-LauncherCard')
        .filter({ hasText: 'AGIFlow Prompts', visible: true })
        .first();
      if (!(await card.isVisible())) {
        await page.locator('#jp-main-dock-panel .lm-TabBar-addButton').first().click();
      }
      await card.click();
      const view = page.locator('#agiflow-lab-prompts');
      await view.waitFor({ state: 'visible' });
      await openPrompt(page, view);
      // The main area shows the list and the detail side by side.
      await view.locator('.agiflow-prompt-list').waitFor({ state: 'visible' });
      await checkDetail(view.locator('.agiflow-prompt-detail'), expected);
    });
  });

  test('a new version is saved from the form, production moves onto it, and the snippet follows', { skip, timeout: 180_000 }, async t => {
    const name = `edited-${Date.now().toString(36)}`;
    await api('POST', `projects/${env.project}/prompts`, { name, template: 'Hi {{who}}', labels: ['production'] });
    await withPage(t, 'prompts-edit', async page => {
      const view = await openByCommand(page, 'agiflow-lab-prompts', 'agiflow-lab:open-prompts');
      await view.getByTestId('agiflow-project-select').selectOption(env.project);
      const item = view.locator('.agiflow-prompt-item').filter({ has: page.getByText(name, { exact: true }) });
      await firstOf(item, view);
      await item.click();
      const detail = view.locator('.agiflow-prompt-detail');
      const snippet = detail.getByTestId('agiflow-sdk-snippet');
      await firstOf(snippet, detail);

      // A new version from the form: the detail shows it, and its snippet names a label it carries.
      await detail.getByTestId('agiflow-tool-edit').click();
      const form = detail.getByTestId('agiflow-version-form');
      await form.getByTestId('agiflow-template-input').fill('Hello {{who}}, from version two');
      await form.getByTestId('agiflow-commit-input').fill('friendlier');
      await form.getByTestId('agiflow-version-save').click();
      await form.waitFor({ state: 'detached' });
      const picker = await detail.getByTestId('agiflow-version-select').elementHandle();
      await page.waitForFunction(select => select.value === '2', picker);
      await detail.getByTestId('agiflow-template').filter({ hasText: 'from version two' }).waitFor();
      assert.equal(await snippet.innerText(), `client.prompts.get(${JSON.stringify(name)}, version=2)`); // no label on it yet: pinned

      // Production moves onto it: the snippet follows, the history says where it was.
      await detail.getByTestId('agiflow-tool-labels').click();
      const labels = detail.getByTestId('agiflow-prompt-labels');
      await labels.getByTestId('agiflow-label-name').fill('production');
      await labels.getByTestId('agiflow-label-move').click();
      const production = labels.locator('[data-testid="agiflow-label-row"][data-label="production"]');
      await production.filter({ hasText: 'v2' }).waitFor();
      await snippet.filter({ hasText: 'label="production"' }).waitFor();
      await production.getByRole('button', { name: 'History' }).click();
      await labels.getByTestId('agiflow-label-history').filter({ hasText: 'v1 → v2' }).waitFor();
      const served = await api('GET', `projects/${env.project}/prompts/${name}?label=production`);
      assert.equal(served.version, 2);
      assert.equal(served.template, 'Hello {{who}}, from version two');

      // The version picker shows every version with its labels; choosing v1 shows v1 and a snippet for it.
      await detail.getByTestId('agiflow-version-select').selectOption('1');
      await detail.getByTestId('agiflow-template').filter({ hasText: 'Hi {{who}}' }).waitFor();
      assert.equal(await snippet.innerText(), `client.prompts.get(${JSON.stringify(name)}, version=1)`);
      await detail.getByTestId('agiflow-tool-diff').click();
      await detail.getByTestId('agiflow-diff-lines').filter({ hasText: 'from version two' }).waitFor();
      await screenshotThemes(page, 'prompts-edit');
    });
  });

  test('the keyboard alone finds a prompt, opens it and saves a new version', { skip, timeout: 180_000 }, async t => {
    const name = `keys-${Date.now().toString(36)}`;
    await api('POST', `projects/${env.project}/prompts`, { name, template: 'Hi {{who}}' });
    await withPage(t, 'prompts-keyboard', async page => {
      // Opened by its command (what the palette or a launcher card runs); from here on, only keys.
      const view = await openByCommand(page, 'agiflow-lab-prompts', 'agiflow-lab:open-prompts');
      await firstOf(view.getByTestId('agiflow-prompt-list'), view);
      await page.evaluate(() => document.activeElement?.blur());
      const search = view.getByTestId('agiflow-search');
      await tabTo(page, search);
      await page.keyboard.type(name);
      const item = view.locator('.agiflow-prompt-item').filter({ has: page.getByText(name, { exact: true }) });
      await tabTo(page, item);
      await page.keyboard.press('Enter');
      const detail = view.locator('.agiflow-prompt-detail');
      await firstOf(detail.getByTestId('agiflow-template').filter({ hasText: 'Hi {{who}}' }), detail);

      await tabTo(page, detail.getByTestId('agiflow-tool-edit'));
      await page.keyboard.press('Enter');
      const form = detail.getByTestId('agiflow-version-form');
      await tabTo(page, form.getByTestId('agiflow-template-input'));
      await page.keyboard.press('ControlOrMeta+A');
      await page.keyboard.type('Hello {{who}}, typed');
      await tabTo(page, form.getByTestId('agiflow-version-save'));
      await page.keyboard.press('Enter');
      await form.waitFor({ state: 'detached' });
      await detail.getByTestId('agiflow-template').filter({ hasText: 'Hello {{who}}, typed' }).waitFor();
      const saved = await api('GET', `projects/${env.project}/prompts/${name}?version=2`);
      assert.equal(saved.template, 'Hello {{who}}, typed');

      // Back to the version picker (backwards from the tools) and onto v1 with the arrow keys.
      const picker = detail.getByTestId('agiflow-version-select');
      await tabTo(page, picker, { back: true });
      await page.keyboard.press('ArrowDown');
      await detail.getByTestId('agiflow-template').filter({ hasText: 'Hi {{who}}' }).waitFor();
    });
  });

  /** Load JupyterLab (the default workspace) in a fresh page, run `body`, save a screenshot either way. */
  async function withPage(t, name, body) {
    expected ??= await latestVersion(env.project, env.prompt);
    await inLab(t, { name, workspace: null, viewport: { width: 1280, height: 800 } }, async page => {
      await body(page);
      await hideToasts(page);
      await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
    });
  }
});

/** Choose the project, find the prompt in `.agiflow-prompt-list` and click it. */
async function openPrompt(page, scope) {
  const select = scope.getByTestId('agiflow-project-select');
  await firstOf(select, scope);
  await select.selectOption(env.project);
  const item = scope
    .locator('.agiflow-prompt-list .agiflow-prompt-item')
    .filter({ has: page.getByText(env.prompt, { exact: true }) });
  await firstOf(item, scope);
  assert.equal(await item.count(), 1, `one list item named ${env.prompt}`);
  await item.click();
}

/** The detail shows the template, version and SDK snippet the API has. */
async function checkDetail(detail, expected) {
  const template = detail.getByTestId('agiflow-template');
  await firstOf(template, detail);
  const shown = normalize(await template.innerText());
  for (const part of templateParts(expected.template)) {
    assert.ok(
      shown.includes(normalize(part)),
      `the detail shows the template text ${JSON.stringify(part)}; it shows ${JSON.stringify(shown)}`
    );
  }
  assert.equal(await detail.getByTestId('agiflow-version-select').inputValue(), String(expected.version));
  assert.match(
    await detail.getByTestId('agiflow-sdk-snippet').innerText(),
    new RegExp(`^client\\.prompts\\.get\\(${escapeRegExp(JSON.stringify(env.prompt))}, label="[\\w.-]+"\\)$`)
  );
}


/** The prompt as the REST API returns it: what the detail view must show. */
async function latestVersion(project, name) {
  const url =
    `${env.url}agiflow/api/v1/projects/${encodeURIComponent(project)}` +
    `/prompts/${encodeURIComponent(name)}?label=latest`;
  const response = await fetch(url, { headers: { Authorization: `token ${env.token}` } });
  const body = await response.text();
  assert.equal(response.status, 200, `GET ${url} → ${response.status}: ${body}`);
  return JSON.parse(body);
}

function templateParts(template) {
  return typeof template === 'string' ? [template] : template.map(message => message.content);
}

function normalize(text) {
  return text.replace(/\s+/g, ' ').trim();
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
