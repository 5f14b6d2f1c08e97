import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { TraceRequest, TracesView } from './TracesView';
import { ToolbarHost } from './ViewToolbar';

/** The Lumino widget that hosts the React traces view; other views open a trace in it. */
export class TracesWidget extends ReactWidget {
  private request: TraceRequest | undefined;

  constructor(
    private readonly api: AgiflowApi,
    private readonly toolbar: HTMLElement | null
  ) {
    super();
    this.addClass('agiflow-browser-widget');
    this.addClass('agiflow-traces-widget');
  }

  /** Show `traceId` of `project`, opened as if its row had been clicked. */
  openTrace(project: string, traceId: string): void {
    this.request = { project, traceId, seq: (this.request?.seq ?? 0) + 1 };
    this.update();
  }

  protected render(): JSX.Element {
    return (
      <ToolbarHost.Provider value={this.toolbar}>
        <TracesView api={this.api} request={this.request} />
      </ToolbarHost.Provider>
    );
  }
}
