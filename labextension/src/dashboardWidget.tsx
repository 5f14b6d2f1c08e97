import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { DashboardView } from './DashboardView';
import { ToolbarHost } from './ViewToolbar';

/** The Lumino widget that hosts the React dashboard view; it tells the view whether it is on screen. */
export class DashboardWidget extends ReactWidget {
  constructor(
    private readonly api: AgiflowApi,
    private readonly openTrace: (project: string, traceId: string) => void,
    private readonly toolbar: HTMLElement | null
  ) {
    super();
    this.addClass('agiflow-browser-widget');
    this.addClass('agiflow-dashboard-widget');
  }

  protected render(): JSX.Element {
    return (
      <ToolbarHost.Provider value={this.toolbar}>
        <DashboardView api={this.api} openTrace={this.openTrace} isShown={() => this.isVisible} />
      </ToolbarHost.Provider>
    );
  }
}
