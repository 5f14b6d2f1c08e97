import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import type { TellWhenDone } from './completions';
import { EvalsView } from './EvalsView';

/** The Lumino widget that hosts the React evaluations view. */
export class EvalsWidget extends ReactWidget {
  constructor(
    private readonly api: AgiflowApi,
    private readonly openPath: (path: string) => Promise<unknown>,
    private readonly tellWhenDone?: TellWhenDone
  ) {
    super();
    this.addClass('agiflow-browser-widget');
    this.addClass('agiflow-evals-widget');
  }

  protected render(): JSX.Element {
    return <EvalsView api={this.api} openPath={this.openPath} tellWhenDone={this.tellWhenDone} />;
  }
}
