import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { SettingsView } from './SettingsView';

/** The Lumino widget that hosts the React project settings view. */
export class SettingsWidget extends ReactWidget {
  constructor(private readonly api: AgiflowApi) {
    super();
    this.addClass('agiflow-browser-widget');
    this.addClass('agiflow-settings-widget');
  }

  protected render(): JSX.Element {
    return <SettingsView api={this.api} />;
  }
}
