import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { LabIcon, ReactWidget, Toolbar } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import * as React from 'react';
import type { ReactElement } from 'react';

import { ToolbarHost } from './ViewToolbar';

export const CATEGORY = 'AGIFlow';

/** What JupyterLab gives the plugin, handed to every view's registration. */
export interface Shell {
  app: JupyterFrontEnd;
  palette: ICommandPalette | null;
  launcher: ILauncher | null;
  restorer: ILayoutRestorer | null;
}

export interface ViewSpec<W extends Widget> {
  /** Short name: the command is `agiflow-lab:open-<name>`, the widget id `agiflow-lab-<name>`. */
  name: string;
  label: string;
  caption: string;
  icon: LabIcon;
  /** Order among the AGIFlow launcher cards; null: palette only. */
  rank: number | null;
  /** The view, given the node of the JupyterLab toolbar above it (for `ToolbarHost`). */
  create: (toolbar: HTMLElement) => W;
  /** Command arguments (e.g. which trace to show) applied to the open view. */
  applyArgs?: (content: W, args: ReadonlyPartialJSONObject) => void;
}

/**
 * A view that is only its React element (no methods for commands to call) in a Lumino widget, with the
 * classes the views' CSS hangs on.
 */
export function viewWidget(name: string, element: ReactElement, toolbar: HTMLElement | null): ReactWidget {
  const widget = ReactWidget.create(React.createElement(ToolbarHost.Provider, { value: toolbar }, element));
  widget.addClass('agiflow-browser-widget');
  widget.addClass(`agiflow-${name}-widget`);
  return widget;
}

export function commandId(name: string): string {
  return `agiflow-lab:open-${name}`;
}

/**
 * One main-area view: a command that opens it (or brings the open one to the
 * front), its palette and launcher items, and restoring it with the layout.
 * Every AGIFlow view registers through here, so they all behave alike.
 */
export function registerView<W extends Widget>(shell: Shell, spec: ViewSpec<W>): string {
  const { app, palette, launcher, restorer } = shell;
  const id = commandId(spec.name);
  const tracker = new WidgetTracker<MainAreaWidget<W>>({ namespace: `agiflow-lab-${spec.name}` });
  app.commands.addCommand(id, {
    label: spec.label,
    caption: spec.caption,
    icon: args => (args['isPalette'] ? undefined : spec.icon),
    execute: args => {
      let main = tracker.currentWidget;
      if (!main || main.isDisposed) {
        // The view's tools (live state, toggles, reload, its New button) go in JupyterLab's toolbar.
        const tools = new Widget();
        tools.addClass('agiflow-view-tools');
        // A plain toolbar: JupyterLab's default one moves items that do not fit into a "…" menu, which
        // would hide the view's live state.
        main = new MainAreaWidget({ content: spec.create(tools.node), toolbar: new Toolbar() });
        main.toolbar.addItem('agiflow-view-tools', tools);
        main.id = `agiflow-lab-${spec.name}`;
        main.title.label = spec.label;
        main.title.caption = spec.caption;
        main.title.icon = spec.icon;
        main.title.closable = true;
        void tracker.add(main);
      }
      if (!main.isAttached) {
        app.shell.add(main, 'main');
      }
      spec.applyArgs?.(main.content, args);
      app.shell.activateById(main.id);
      return main;
    }
  });
  palette?.addItem({ command: id, category: CATEGORY });
  if (spec.rank !== null) {
    launcher?.add({ command: id, category: CATEGORY, rank: spec.rank });
  }
  if (restorer) {
    void restorer.restore(tracker, { command: id, name: () => `agiflow-${spec.name}` });
  }
  return id;
}
