import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { BrowserMode, PromptBrowser } from './PromptBrowser';
import { ToolbarHost } from './ViewToolbar';

/** The Lumino widget that hosts the React prompt browser. */
export class PromptBrowserWidget extends ReactWidget {
  constructor(
    private readonly api: AgiflowApi,
    private readonly mode: BrowserMode,
    private readonly toolbar: HTMLElement | null = null
  ) {
    super();
    this.addClass('agiflow-browser-widget');
  }

  protected render(): JSX.Element {
    return (
      <ToolbarHost.Provider value={this.toolbar}>
        <PromptBrowser api={this.api} mode={this.mode} />
      </ToolbarHost.Provider>
    );
  }
}
