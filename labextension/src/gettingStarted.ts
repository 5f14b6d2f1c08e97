import { Notification } from '@jupyterlab/apputils';
import type { PartialJSONObject } from '@lumino/coreutils';

import { type AgiflowApi, errorMessage } from './api';
import { gettingStartedIcon } from './icon';
import { CATEGORY, commandId, type Shell } from './registerView';

/** Where the notebook is saved in the user's files; an existing copy (maybe edited) is opened, never replaced. */
export const GETTING_STARTED_PATH = 'AGIFlow Getting Started.ipynb';

/**
 * The launcher's first card: a notebook that walks through the platform on
 * its defaults. The server holds the current version; it is saved into the
 * user's folder once, then opened like any notebook.
 */
export function registerGettingStarted(shell: Shell, api: AgiflowApi, rank: number): void {
  const { app, palette, launcher } = shell;
  const id = commandId('getting-started');
  app.commands.addCommand(id, {
    label: 'AGIFlow Getting Started',
    caption: 'A notebook that walks through prompts, datasets, evaluations, traces and jobs',
    icon: args => (args['isPalette'] ? undefined : gettingStartedIcon),
    execute: async (): Promise<void> => {
      const contents = app.serviceManager.contents;
      try {
        await contents.get(GETTING_STARTED_PATH, { content: false });
      } catch {
        try {
          const notebook = await api.read<PartialJSONObject>(['getting-started']);
          await contents.save(GETTING_STARTED_PATH, { type: 'notebook', format: 'json', content: notebook });
        } catch (reason) {
          Notification.error(`Could not create the Getting started notebook: ${errorMessage(reason)}`);
          return;
        }
      }
      await app.commands.execute('docmanager:open', { path: GETTING_STARTED_PATH });
    }
  });
  palette?.addItem({ command: id, category: CATEGORY });
  launcher?.add({ command: id, category: CATEGORY, rank });
}
