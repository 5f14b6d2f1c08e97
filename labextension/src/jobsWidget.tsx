import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import type { TellWhenDone } from './completions';
import { JobsView } from './JobsView';

/** The Lumino widget that hosts the React jobs view. */
export class JobsWidget extends ReactWidget {
  constructor(
    private readonly api: AgiflowApi,
    private readonly openPath: (path: string) => Promise<unknown>,
    private readonly tellWhenDone?: TellWhenDone
  ) {
    super();
    this.addClass('agiflow-browser-widget');
    this.addClass('agiflow-jobs-widget');
  }

  protected render(): JSX.Element {
    return <JobsView api={this.api} openPath={this.openPath} tellWhenDone={this.tellWhenDone} />;
  }
}
