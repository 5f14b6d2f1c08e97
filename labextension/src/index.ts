import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import * as React from 'react';

import { AgiflowApi } from './api';
import { DashboardWidget } from './dashboardWidget';
import { DatasetsApi } from './datasetsApi';
import { DatasetsView } from './DatasetsView';
import { EvalsView } from './EvalsView';
import { registerGettingStarted } from './gettingStarted';
import {
  agiflowIcon,
  dashboardIcon,
  datasetsIcon,
  evalsIcon,
  jobsIcon,
  modelsIcon,
  promptsIcon,
  schedulesIcon,
  settingsIcon,
  tracesIcon
} from './icon';
import { JobsView } from './JobsView';
import { ModelsView } from './ModelsView';
import { commandId, registerView, Shell, viewWidget } from './registerView';
import { CompletionWatcher, type TellWhenDone } from './completions';
import { registerRunAsJob } from './runAsJob';
import { followInAppNotifications } from './inAppNotifications';
import { SchedulesView } from './SchedulesView';
import { SettingsView } from './SettingsView';
import { TracesWidget } from './tracesWidget';
import { PromptBrowserWidget } from './widget';

const SIDEBAR_ID = 'agiflow-lab-sidebar';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'agiflow-lab:plugin',
  description:
    'AGIFlow: prompts (a left sidebar panel and a main view), jobs, evaluations, traces, a dashboard, schedules, a Getting started notebook.',
  autoStart: true,
  optional: [ICommandPalette, ILauncher, ILayoutRestorer, IFileBrowserFactory],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    restorer: ILayoutRestorer | null,
    files: IFileBrowserFactory | null
  ): void => {
    const api = new AgiflowApi(app.serviceManager.serverSettings);
    const shell: Shell = { app, palette, launcher, restorer };
    const openPath = (path: string): Promise<unknown> => app.commands.execute('docmanager:open', { path });
    const openView = (view: string): void => void app.commands.execute(commandId(view));
    const datasets = new DatasetsApi(api, app.serviceManager.serverSettings);

    const sidebar = new PromptBrowserWidget(api, 'sidebar');
    sidebar.id = SIDEBAR_ID;
    sidebar.title.icon = agiflowIcon;
    sidebar.title.caption = 'AGIFlow';
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, SIDEBAR_ID);

    registerGettingStarted(shell, api, 0);
    const completions = new CompletionWatcher(api);
    const tellWhenDone: TellWhenDone = (project, jobId, label, view) =>
      completions.watch(project, jobId, { label, open: () => void app.commands.execute(commandId(view)) });
    registerRunAsJob(shell, api, files, tellWhenDone);
    // Alerts, failed jobs and runs, lost workers: the server's in-app notifications, as JupyterLab's own.
    void followInAppNotifications(api).catch(() => undefined);
    registerView(shell, {
      name: 'prompts',
      label: 'AGIFlow Prompts',
      caption: 'Create, version and label the prompts of your AGIFlow projects',
      icon: promptsIcon,
      rank: 1,
      create: toolbar => new PromptBrowserWidget(api, 'main', toolbar)
    });
    registerView(shell, {
      name: 'jobs',
      label: 'AGIFlow Jobs',
      caption: 'Run notebook jobs and follow them live',
      icon: jobsIcon,
      rank: 2,
      create: toolbar => viewWidget('jobs', React.createElement(JobsView, { api, openPath, tellWhenDone }), toolbar)
    });
    registerView(shell, {
      name: 'evals',
      label: 'AGIFlow Evaluations',
      caption: 'Follow evaluation runs live, see their items and compare two runs',
      icon: evalsIcon,
      rank: 3,
      create: toolbar => viewWidget('evals', React.createElement(EvalsView, { api, openPath, tellWhenDone }), toolbar)
    });
    const openTraces = registerView(shell, {
      name: 'traces',
      label: 'AGIFlow Traces',
      caption: 'Search traces, open one to see its spans (args: project and traceId open that trace)',
      icon: tracesIcon,
      rank: 4,
      create: toolbar => new TracesWidget(api, toolbar),
      applyArgs: (content, args) => {
        const project = args['project'];
        const traceId = args['traceId'];
        if (typeof project === 'string' && typeof traceId === 'string') {
          content.openTrace(project, traceId);
        }
      }
    });
    registerView(shell, {
      name: 'dashboard',
      label: 'AGIFlow Dashboard',
      caption: 'Span counts, errors, latency, tokens and cost over time; workers and the job queue',
      icon: dashboardIcon,
      rank: 5,
      create: toolbar =>
        new DashboardWidget(
          api,
          (project, traceId) => {
            void app.commands.execute(openTraces, { project, traceId });
          },
          toolbar
        )
    });
    registerView(shell, {
      name: 'datasets',
      label: 'AGIFlow Datasets',
      caption: 'Datasets: versions, items, CSV/JSONL upload with the column mapping, export',
      icon: datasetsIcon,
      rank: 6,
      create: toolbar => viewWidget('datasets', React.createElement(DatasetsView, { api, datasets }), toolbar)
    });
    registerView(shell, {
      name: 'models',
      label: 'AGIFlow Models',
      caption: 'Model connections (write-only keys, a test call) and price overrides',
      icon: modelsIcon,
      rank: 7,
      create: toolbar => viewWidget('models', React.createElement(ModelsView, { api }), toolbar)
    });
    registerView(shell, {
      name: 'schedules',
      label: 'AGIFlow Schedules',
      caption: 'Notebook jobs and evaluation runs on a cron expression or an interval: pause, run now, history',
      icon: schedulesIcon,
      rank: 8,
      create: toolbar => viewWidget('schedules', React.createElement(SchedulesView, { api, openView }), toolbar)
    });
    registerView(shell, {
      name: 'settings',
      label: 'AGIFlow Project settings',
      caption: 'Projects, members and roles, API keys and the audit log',
      icon: settingsIcon,
      rank: 9,
      create: toolbar => viewWidget('settings', React.createElement(SettingsView, { api }), toolbar)
    });
  }
};

export default plugin;
