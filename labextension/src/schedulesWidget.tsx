import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { OpenView, SchedulesView } from './SchedulesView';

/** The Lumino widget that hosts the React schedules view. */
export class SchedulesWidget extends ReactWidget {
  constructor(
    private readonly api: AgiflowApi,
    private readonly openView: OpenView
  ) {
    super();
    this.addClass('agiflow-browser-widget');
    this.addClass('agiflow-schedules-widget');
  }

  protected render(): JSX.Element {
    return <SchedulesView api={this.api} openView={this.openView} />;
  }
}
