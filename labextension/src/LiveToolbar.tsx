import { refreshIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { SocketStatus } from './events';

/** The title bar of a live view: its name, the events socket's state and a reload button. */
export function LiveToolbar(props: { title: string; status: SocketStatus; onReload: () => void }): JSX.Element {
  const { title, status, onReload } = props;
  return (
    <div className="agiflow-toolbar">
      <span className="agiflow-title">{title}</span>
      <span className="agiflow-toolbar-end">
        <span className={`agiflow-live agiflow-live-${status}`} data-testid="agiflow-live" title="Job events WebSocket">
          {status === 'live' ? '● live' : status}
        </span>
        <button type="button" className="agiflow-icon-button" title="Reload" aria-label="Reload" onClick={onReload}>
          <refreshIcon.react tag="span" />
        </button>
      </span>
    </div>
  );
}
