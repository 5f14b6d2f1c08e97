import { Notification } from '@jupyterlab/apputils';

import type { AgiflowApi } from './api';
import { LiveSocket } from './events';
import type { components } from './schema';

type InApp = components['schemas']['Notification'];

const KINDS = { info: 'info', warning: 'warning', critical: 'error' } as const;

/**
 * The platform's in-app notifications (alerts firing and resolving, failed jobs and runs, lost workers)
 * as JupyterLab notifications: each project the user belongs to is followed on its notifications socket;
 * what arrives unread is shown once, and "Mark read" records it for this user on the server.
 */
export async function followInAppNotifications(api: AgiflowApi): Promise<() => void> {
  const projects = (await api.listProjects()).items.map(p => p.slug);
  const sockets = projects.slice(0, 20).map(project => {
    let newest: number | null = null; // what was there when we started is not news
    const read = async (): Promise<void> => {
      const page = await api.read<{ items: InApp[] }>(['projects', project, 'notifications'], {
        unread: 'true',
        limit: 20
      });
      const fresh = newest === null ? [] : page.items.filter(n => n.id > (newest ?? 0));
      newest = Math.max(newest ?? 0, ...page.items.map(n => n.id));
      for (const n of fresh.reverse()) {
        Notification.emit(`${n.title}${n.body ? `: ${n.body}` : ''}`, KINDS[n.severity], {
          autoClose: n.severity === 'info' ? 8000 : false,
          actions: [
            {
              label: 'Mark read',
              callback: () => void api.call('POST', ['projects', project, 'notifications', String(n.id), 'read'])
            }
          ]
        });
      }
    };
    const wake = (): void => void read().catch(() => undefined);
    return new LiveSocket(
      api.WebSocket,
      () => api.liveUrl(project, 'notifications'),
      wake,
      status => status === 'live' && wake()
    );
  });
  return () => sockets.forEach(s => s.dispose());
}
