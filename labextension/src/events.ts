/**
 * A resumable subscription to one project's job events (`/events` WebSocket).
 *
 * Event ids only grow: the socket remembers the last one it delivered, drops
 * anything not newer (the server may resend around a reconnect), and on any
 * close reconnects with `after=<last id>` so nothing is missed.
 */
import type { AgiflowApi } from './api';
import type { JobEvent } from './types';

export type SocketStatus = 'connecting' | 'live' | 'reconnecting' | 'closed';

export interface JobEventSocketOptions {
  /** Receives events in id order, batched (a replay can be thousands). */
  onEvents: (events: JobEvent[]) => void;
  onStatus?: (status: SocketStatus) => void;
  /** Resume point; 0 replays the project's history, `latest` starts from what happens next. */
  after?: number | 'latest';
}

const BATCH_MS = 50;
const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

/**
 * A WebSocket that stays open: on any close it reconnects with capped exponential backoff, asking
 * `url()` again each time (so the caller can resume from where it got to). The one reconnect loop
 * the views share.
 */
export class LiveSocket {
  private socket: WebSocket | null = null;
  private delay = MIN_DELAY_MS;
  private retryTimer: number | undefined;
  private disposed = false;

  constructor(
    private readonly Socket: typeof WebSocket,
    private readonly url: () => string,
    private readonly onMessage: (data: unknown) => void,
    private readonly onStatus: (status: SocketStatus) => void = () => undefined,
    private readonly onDrop: () => void = () => undefined
  ) {
    this.connect('connecting');
  }

  dispose(): void {
    if (this.disposed) {
      return;
    }
    this.disposed = true;
    window.clearTimeout(this.retryTimer);
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      socket.close();
    }
    this.onStatus('closed');
  }

  private connect(status: SocketStatus): void {
    this.onStatus(status);
    const socket = new this.Socket(this.url());
    this.socket = socket;
    socket.onopen = () => {
      this.delay = MIN_DELAY_MS;
      this.onStatus('live');
    };
    socket.onmessage = message => this.onMessage(message.data);
    socket.onclose = () => {
      if (this.disposed || this.socket !== socket) {
        return;
      }
      this.socket = null;
      this.onDrop();
      this.onStatus('reconnecting');
      this.retryTimer = window.setTimeout(() => this.connect('reconnecting'), this.delay);
      this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
    };
  }
}

export class JobEventSocket {
  private readonly live: LiveSocket;
  private lastId: number | 'latest';
  private flushTimer: number | undefined;
  private pending: JobEvent[] = [];
  private disposed = false;

  constructor(
    api: AgiflowApi,
    project: string,
    private readonly options: JobEventSocketOptions
  ) {
    this.lastId = options.after ?? 0;
    this.live = new LiveSocket(
      api.WebSocket,
      () => api.eventsUrl(project, this.lastId),
      data => this.receive(data),
      status => options.onStatus?.(status),
      () => this.flush()
    );
  }

  /** The id of the newest event delivered so far (0 before the first when following from `latest`). */
  get lastEventId(): number {
    return this.lastId === 'latest' ? 0 : this.lastId;
  }

  dispose(): void {
    if (this.disposed) {
      return;
    }
    this.disposed = true;
    window.clearTimeout(this.flushTimer);
    this.pending = [];
    this.live.dispose();
  }

  private receive(data: unknown): void {
    if (typeof data !== 'string') {
      return;
    }
    let event: unknown;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (!isJobEvent(event) || (this.lastId !== 'latest' && event.id <= this.lastId)) {
      return;
    }
    this.lastId = event.id;
    this.pending.push(event);
    if (this.flushTimer === undefined) {
      this.flushTimer = window.setTimeout(() => this.flush(), BATCH_MS);
    }
  }

  private flush(): void {
    window.clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.length === 0 || this.disposed) {
      return;
    }
    const events = this.pending;
    this.pending = [];
    this.options.onEvents(events);
  }
}

function isJobEvent(value: unknown): value is JobEvent {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const v = value as Partial<Record<keyof JobEvent, unknown>>;
  return (
    typeof v.id === 'number' &&
    typeof v.job_id === 'string' &&
    typeof v.type === 'string' &&
    typeof v.at === 'string' &&
    typeof v.data === 'object' &&
    v.data !== null
  );
}
