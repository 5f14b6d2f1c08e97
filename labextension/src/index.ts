import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';

import { AgiflowApi } from './api';
import { DashboardWidget } from './dashboardWidget';
import { EvalsWidget } from './evalsWidget';
import { agiflowIcon } from './icon';
import { JobsWidget } from './jobsWidget';
import { TracesWidget } from './tracesWidget';
import { PromptBrowserWidget } from './widget';

const CommandIDs = {
  openPrompts: 'agiflow-lab:open-prompts',
  openJobs: 'agiflow-lab:open-jobs',
  openEvals: 'agiflow-lab:open-evals',
  openTraces: 'agiflow-lab:open-traces',
  openDashboard: 'agiflow-lab:open-dashboard'
} as const;

const SIDEBAR_ID = 'agiflow-lab-sidebar';
const CATEGORY = 'AGIFlow';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'agiflow-lab:plugin',
  description:
    'AGIFlow prompt browser (a left sidebar panel, plus a launcher and palette item), live jobs and evaluations views, traces and a dashboard.',
  autoStart: true,
  optional: [ICommandPalette, ILauncher, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    restorer: ILayoutRestorer | null
  ): void => {
    const api = new AgiflowApi(app.serviceManager.serverSettings);

    const sidebar = new PromptBrowserWidget(api, 'sidebar');
    sidebar.id = SIDEBAR_ID;
    sidebar.title.icon = agiflowIcon;
    sidebar.title.caption = 'AGIFlow';
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, SIDEBAR_ID);

    const tracker = new WidgetTracker<MainAreaWidget<PromptBrowserWidget>>({
      namespace: 'agiflow-lab-prompts'
    });

    app.commands.addCommand(CommandIDs.openPrompts, {
      label: 'AGIFlow Prompts',
      caption: 'Browse the prompts of your AGIFlow projects',
      icon: args => (args['isPalette'] ? undefined : agiflowIcon),
      execute: () => {
        let main = tracker.currentWidget;
        if (!main || main.isDisposed) {
          const content = new PromptBrowserWidget(api, 'main');
          main = new MainAreaWidget({ content });
          main.id = 'agiflow-lab-prompts';
          main.title.label = 'AGIFlow Prompts';
          main.title.icon = agiflowIcon;
          main.title.closable = true;
          void tracker.add(main);
        }
        if (!main.isAttached) {
          app.shell.add(main, 'main');
        }
        app.shell.activateById(main.id);
        return main;
      }
    });

    palette?.addItem({ command: CommandIDs.openPrompts, category: CATEGORY });
    launcher?.add({ command: CommandIDs.openPrompts, category: CATEGORY, rank: 1 });
    if (restorer) {
      void restorer.restore(tracker, {
        command: CommandIDs.openPrompts,
        name: () => 'agiflow-prompts'
      });
    }

    const jobsTracker = new WidgetTracker<MainAreaWidget<JobsWidget>>({
      namespace: 'agiflow-lab-jobs'
    });
    const openPath = (path: string): Promise<unknown> => app.commands.execute('docmanager:open', { path });

    app.commands.addCommand(CommandIDs.openJobs, {
      label: 'AGIFlow Jobs',
      caption: 'Run notebook jobs and follow them live',
      icon: args => (args['isPalette'] ? undefined : agiflowIcon),
      execute: () => {
        let main = jobsTracker.currentWidget;
        if (!main || main.isDisposed) {
          const content = new JobsWidget(api, openPath);
          main = new MainAreaWidget({ content });
          main.id = 'agiflow-lab-jobs';
          main.title.label = 'AGIFlow Jobs';
          main.title.icon = agiflowIcon;
          main.title.closable = true;
          void jobsTracker.add(main);
        }
        if (!main.isAttached) {
          app.shell.add(main, 'main');
        }
        app.shell.activateById(main.id);
        return main;
      }
    });

    palette?.addItem({ command: CommandIDs.openJobs, category: CATEGORY });
    launcher?.add({ command: CommandIDs.openJobs, category: CATEGORY, rank: 2 });
    if (restorer) {
      void restorer.restore(jobsTracker, {
        command: CommandIDs.openJobs,
        name: () => 'agiflow-jobs'
      });
    }

    const evalsTracker = new WidgetTracker<MainAreaWidget<EvalsWidget>>({
      namespace: 'agiflow-lab-evals'
    });

    app.commands.addCommand(CommandIDs.openEvals, {
      label: 'AGIFlow Evaluations',
      caption: 'Follow evaluation runs live, see their items and compare two runs',
      icon: args => (args['isPalette'] ? undefined : agiflowIcon),
      execute: () => {
        let main = evalsTracker.currentWidget;
        if (!main || main.isDisposed) {
          const content = new EvalsWidget(api, openPath);
          main = new MainAreaWidget({ content });
          main.id = 'agiflow-lab-evals';
          main.title.label = 'AGIFlow Evaluations';
          main.title.icon = agiflowIcon;
          main.title.closable = true;
          void evalsTracker.add(main);
        }
        if (!main.isAttached) {
          app.shell.add(main, 'main');
        }
        app.shell.activateById(main.id);
        return main;
      }
    });

    palette?.addItem({ command: CommandIDs.openEvals, category: CATEGORY });
    launcher?.add({ command: CommandIDs.openEvals, category: CATEGORY, rank: 3 });
    if (restorer) {
      void restorer.restore(evalsTracker, {
        command: CommandIDs.openEvals,
        name: () => 'agiflow-evals'
      });
    }

    const tracesTracker = new WidgetTracker<MainAreaWidget<TracesWidget>>({
      namespace: 'agiflow-lab-traces'
    });

    app.commands.addCommand(CommandIDs.openTraces, {
      label: 'AGIFlow Traces',
      caption: 'Search traces, open one to see its spans (args: project and traceId open that trace)',
      icon: args => (args['isPalette'] ? undefined : agiflowIcon),
      execute: args => {
        let main = tracesTracker.currentWidget;
        if (!main || main.isDisposed) {
          const content = new TracesWidget(api);
          main = new MainAreaWidget({ content });
          main.id = 'agiflow-lab-traces';
          main.title.label = 'AGIFlow Traces';
          main.title.icon = agiflowIcon;
          main.title.closable = true;
          void tracesTracker.add(main);
        }
        if (!main.isAttached) {
          app.shell.add(main, 'main');
        }
        const project = args['project'];
        const traceId = args['traceId'];
        if (typeof project === 'string' && typeof traceId === 'string') {
          main.content.openTrace(project, traceId);
        }
        app.shell.activateById(main.id);
        return main;
      }
    });

    palette?.addItem({ command: CommandIDs.openTraces, category: CATEGORY });
    launcher?.add({ command: CommandIDs.openTraces, category: CATEGORY, rank: 4 });
    if (restorer) {
      void restorer.restore(tracesTracker, {
        command: CommandIDs.openTraces,
        name: () => 'agiflow-traces'
      });
    }

    const dashboardTracker = new WidgetTracker<MainAreaWidget<DashboardWidget>>({
      namespace: 'agiflow-lab-dashboard'
    });
    const openTrace = (project: string, traceId: string): void => {
      void app.commands.execute(CommandIDs.openTraces, { project, traceId });
    };

    app.commands.addCommand(CommandIDs.openDashboard, {
      label: 'AGIFlow Dashboard',
      caption: 'Span counts, errors, latency, tokens and cost over time; workers and the job queue',
      icon: args => (args['isPalette'] ? undefined : agiflowIcon),
      execute: () => {
        let main = dashboardTracker.currentWidget;
        if (!main || main.isDisposed) {
          const content = new DashboardWidget(api, openTrace);
          main = new MainAreaWidget({ content });
          main.id = 'agiflow-lab-dashboard';
          main.title.label = 'AGIFlow Dashboard';
          main.title.icon = agiflowIcon;
          main.title.closable = true;
          void dashboardTracker.add(main);
        }
        if (!main.isAttached) {
          app.shell.add(main, 'main');
        }
        app.shell.activateById(main.id);
        return main;
      }
    });

    palette?.addItem({ command: CommandIDs.openDashboard, category: CATEGORY });
    launcher?.add({ command: CommandIDs.openDashboard, category: CATEGORY, rank: 5 });
    if (restorer) {
      void restorer.restore(dashboardTracker, {
        command: CommandIDs.openDashboard,
        name: () => 'agiflow-dashboard'
      });
    }
  }
};

export default plugin;
