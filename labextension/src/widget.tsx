import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { BrowserMode, PromptBrowser } from './PromptBrowser';

/** The Lumino widget that hosts the React prompt browser. */
export class PromptBrowserWidget extends ReactWidget {
  constructor(
    private readonly api: AgiflowApi,
    private readonly mode: BrowserMode
  ) {
    super();
    this.addClass('agiflow-browser-widget');
  }

  protected render(): JSX.Element {
    return <PromptBrowser api={this.api} mode={this.mode} />;
  }
}
