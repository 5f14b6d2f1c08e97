import { Dialog, Notification, ReactWidget, showDialog } from '@jupyterlab/apputils';
import type { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import * as React from 'react';

import { type AgiflowApi, errorMessage } from './api';
import type { TellWhenDone } from './completions';
import { jobsIcon } from './icon';
import { type NotebookParameter, parseValue, readParameters } from './notebookParameters';
import { commandId, type Shell } from './registerView';
import type { Job } from './types';

/** What the dialog's form holds; read back when the user presses Run. */
interface JobDraft {
  project: string;
  values: Record<string, string>;
  timeoutMinutes: string;
  attempts: string;
}

/**
 * "Run as AGIFlow job" on a notebook in the file browser: its `parameters` cell becomes a form (defaults
 * filled in), with the project, a timeout and attempts; Run submits it and says where to follow it.
 */
export function registerRunAsJob(
  shell: Shell,
  api: AgiflowApi,
  files: IFileBrowserFactory | null,
  tellWhenDone: TellWhenDone
): void {
  const { app } = shell;
  const id = commandId('run-as-job');
  app.commands.addCommand(id, {
    label: 'Run as AGIFlow job',
    caption: 'Run this notebook on a worker with papermill, with its parameters',
    icon: jobsIcon,
    isVisible: () => selectedNotebook(files) !== null,
    execute: async args => {
      const path = typeof args['path'] === 'string' ? args['path'] : selectedNotebook(files);
      if (path) {
        await runAsJob(app, api, path, tellWhenDone);
      }
    }
  });
  app.contextMenu.addItem({
    command: id,
    selector: '.jp-DirListing-item[data-file-type="notebook"]',
    rank: 60
  });
}

function selectedNotebook(files: IFileBrowserFactory | null): string | null {
  const browser = files?.tracker.currentWidget;
  const item = browser ? Array.from(browser.selectedItems())[0] : undefined;
  return item && item.type === 'notebook' ? item.path : null;
}

async function runAsJob(app: Shell['app'], api: AgiflowApi, path: string, tellWhenDone: TellWhenDone): Promise<void> {
  let parameters: NotebookParameter[];
  let projects: string[];
  try {
    const model = await app.serviceManager.contents.get(path, { content: true, type: 'notebook' });
    parameters = readParameters(model.content as { cells?: [] });
    projects = (await api.listProjects()).items.filter(p => p.role === 'owner' || p.role === 'editor').map(p => p.slug);
  } catch (reason) {
    Notification.error(`Cannot run ${path}: ${errorMessage(reason)}`);
    return;
  }
  if (projects.length === 0) {
    Notification.error('You can run jobs in no AGIFlow project (editors and owners can).');
    return;
  }
  const draft: JobDraft = {
    project: projects[0],
    values: Object.fromEntries(parameters.map(p => [p.name, p.text])),
    timeoutMinutes: '60',
    attempts: '1'
  };
  const answer = await showDialog({
    title: `Run ${path} as an AGIFlow job`,
    body: ReactWidget.create(<JobForm parameters={parameters} projects={projects} draft={draft} />),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Run' })]
  });
  if (!answer.button.accept) {
    return;
  }
  try {
    const job = await api.call<Job>('POST', ['projects', draft.project, 'jobs'], {
      notebook: `contents:${path}`,
      parameters: Object.fromEntries(Object.entries(draft.values).map(([k, v]) => [k, parseValue(v)])),
      timeout_seconds: Math.max(1, Number(draft.timeoutMinutes) || 60) * 60,
      max_attempts: Math.max(1, Number(draft.attempts) || 1)
    });
    tellWhenDone(job.project, job.id, `Job ${path}`, 'jobs');
    Notification.success(`Job ${job.id.slice(0, 8)} queued: ${path}`, {
      autoClose: 5000,
      actions: [{ label: 'Open Jobs', callback: () => void app.commands.execute(commandId('jobs')) }]
    });
  } catch (reason) {
    Notification.error(`The job was not submitted: ${errorMessage(reason)}`);
  }
}

/** The dialog's form; it writes into `draft` as the user types (the dialog reads it on Run). */
function JobForm(props: { parameters: NotebookParameter[]; projects: string[]; draft: JobDraft }): JSX.Element {
  const { parameters, projects, draft } = props;
  const [, render] = React.useReducer((n: number) => n + 1, 0);
  const set = (change: (d: JobDraft) => void): void => {
    change(draft);
    render();
  };
  return (
    <form className="agiflow-form agiflow-run-as-job" data-testid="agiflow-run-as-job">
      <label className="agiflow-form-field">
        <span>Project</span>
        <select value={draft.project} onChange={event => set(d => (d.project = event.target.value))}>
          {projects.map(p => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
      </label>
      {parameters.length === 0 ? (
        <div className="agiflow-muted">
          No cell tagged <code>parameters</code>: the notebook runs as it is.
        </div>
      ) : (
        parameters.map(p => (
          <label key={p.name} className="agiflow-form-field">
            <span>
              {p.name}
              {p.comment && <span className="agiflow-muted"> · {p.comment}</span>}
            </span>
            <input
              data-testid="agiflow-job-parameter"
              data-parameter={p.name}
              value={draft.values[p.name]}
              onChange={event => set(d => (d.values[p.name] = event.target.value))}
            />
          </label>
        ))
      )}
      <div className="agiflow-form-row">
        <label className="agiflow-form-field">
          <span>Timeout (minutes)</span>
          <input
            type="number"
            min={1}
            value={draft.timeoutMinutes}
            onChange={event => set(d => (d.timeoutMinutes = event.target.value))}
          />
        </label>
        <label className="agiflow-form-field">
          <span>Attempts</span>
          <input
            type="number"
            min={1}
            max={20}
            value={draft.attempts}
            onChange={event => set(d => (d.attempts = event.target.value))}
          />
        </label>
      </div>
    </form>
  );
}
