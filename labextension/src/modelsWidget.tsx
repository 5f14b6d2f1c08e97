import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { ModelsView } from './ModelsView';

/** The Lumino widget that hosts the React models view. */
export class ModelsWidget extends ReactWidget {
  constructor(private readonly api: AgiflowApi) {
    super();
    this.addClass('agiflow-browser-widget');
    this.addClass('agiflow-models-widget');
  }

  protected render(): JSX.Element {
    return <ModelsView api={this.api} />;
  }
}
