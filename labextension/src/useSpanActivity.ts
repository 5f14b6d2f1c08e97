import * as React from 'react';

import type { AgiflowApi } from './api';
import { LiveSocket, type SocketStatus } from './events';

/**
 * Call `onSpans` when the project stores new spans (the server says so at most once a second), and at
 * most once per `minIntervalMs` here, while `enabled`. Returns the socket's state for the toolbar.
 */
export function useSpanActivity(
  api: AgiflowApi,
  project: string | null,
  enabled: boolean,
  onSpans: () => void,
  minIntervalMs = 2_000
): SocketStatus {
  const [status, setStatus] = React.useState<SocketStatus>('closed');
  const callback = React.useRef(onSpans);
  callback.current = onSpans;
  React.useEffect(() => {
    if (project === null || !enabled) {
      setStatus('closed');
      return;
    }
    let last = 0;
    let timer: number | undefined;
    const wake = (): void => {
      const wait = last + minIntervalMs - Date.now();
      if (wait > 0) {
        timer ??= window.setTimeout(() => {
          timer = undefined;
          wake();
        }, wait);
        return;
      }
      last = Date.now();
      callback.current();
    };
    let dropped = false;
    const socket = new LiveSocket(
      api.WebSocket,
      () => api.liveUrl(project, 'traces'),
      () => wake(),
      s => {
        setStatus(s);
        if (s === 'live' && dropped) {
          dropped = false;
          wake(); // spans may have arrived while nobody listened: read once
        }
      },
      () => {
        dropped = true;
      }
    );
    return () => {
      window.clearTimeout(timer);
      socket.dispose();
    };
  }, [api, project, enabled, minIntervalMs]);
  return status;
}
