import type { ServerConnection } from '@jupyterlab/services';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { DatasetsApi } from './datasetsApi';
import { DatasetsView } from './DatasetsView';

/** The Lumino widget that hosts the React datasets view. */
export class DatasetsWidget extends ReactWidget {
  private readonly datasets: DatasetsApi;

  constructor(
    private readonly api: AgiflowApi,
    settings: ServerConnection.ISettings
  ) {
    super();
    this.datasets = new DatasetsApi(api, settings);
    this.addClass('agiflow-browser-widget');
    this.addClass('agiflow-datasets-widget');
  }

  protected render(): JSX.Element {
    return <DatasetsView api={this.api} datasets={this.datasets} />;
  }
}
