/**
 * One mechanism for the views that show a project's list of job-backed records live (jobs, evaluation
 * runs): read the first page, follow the project's job events, and fetch a record again only when an
 * event says it moved. Reading every record again on each event would cost a request per log line;
 * never reading it again would leave errors, results and aggregates, which events do not carry, stale.
 *
 * The rules live outside React (`Refetcher`, the trackers, `LiveListSession`) so the tests can drive
 * them with fake fetches and hand-made events; `useLiveList` only ties one session to a view's life.
 */
import * as React from 'react';

import { AgiflowApi, errorMessage } from './api';
import { EMPTY_RUNS, isNews, itemProgress, runMicros, runsReducer, RunsData } from './evalState';
import { JobEventSocket, SocketStatus } from './events';
import { EMPTY, isNewer, jobsReducer, JobsData, micros } from './jobState';
import type { Job, JobEvent, Page, Run, RunPage } from './types';
import type { Paged } from './usePages';

/** Records per list request: enough for a screen; older ones only when the reader asks. */
export const PAGE_SIZE = 50;

/** State events of jobs not (yet) listed, remembered to catch a run that is being fetched. */
const MAX_UNMATCHED = 1000;

/** What happens to a list, in the words every list's merge rule answers to. */
export type ListChange<T, P> =
  | { type: 'reset' }
  /** the first page: the list as the server has it now */
  | { type: 'loaded'; page: P }
  /** an older page, asked for by the reader */
  | { type: 'more'; page: P }
  /** one record fetched again, or handed in by the view (a job just submitted) */
  | { type: 'upsert'; item: T }
  | { type: 'events'; events: JobEvent[] };

/** The ids a batch of events asks to fetch. */
export interface Affected {
  /** shown records an event outdated: fetched again, and once more if news comes in meanwhile */
  stale: ReadonlySet<string>;
  /** records the list did not hold that the events revealed: fetched unless already on the way */
  found: ReadonlySet<string>;
}

/**
 * A list's memory of what it holds, to tell news from events it already reflects. One per list read
 * (project and reload), so a reload forgets what the previous read knew.
 */
export interface ListTracker<T, P> {
  /** A page of the list arrived (`first`: the first one, which replaces what was there). */
  paged(page: P, first: boolean): void;
  /** A record was fetched by id; true when it is already behind the events seen, so fetch it once more. */
  fetched(item: T): boolean;
  /** Called before the events are applied, so "newer than shown" compares with the records as they were. */
  affected(events: JobEvent[]): Affected;
}

/** How one kind of list is read and kept: the only parts that differ between the live views. */
export interface LiveListSource<T, P extends Paged<T>, S> {
  initial: S;
  reduce: (state: S, change: ListChange<T, P>) => S;
  fetchPage: (api: AgiflowApi, project: string, cursor: string | null) => Promise<P>;
  fetchOne: (api: AgiflowApi, project: string, id: string) => Promise<T>;
  /** `current` answers the state as last rendered, for rules that judge events by it. */
  track: (current: () => S) => ListTracker<T, P>;
}

/** Paging and errors of one list read; the socket's status is kept apart (see `useLiveList`). */
export interface Paging {
  /** cursor of the next (older) page; null when every page is shown */
  cursor: string | null;
  /** the first page could not be read: nothing to show */
  listError: string | undefined;
  /** an older page could not be read: the list shown stays */
  moreError: string | undefined;
  loadingMore: boolean;
}

export const NO_PAGING: Paging = { cursor: null, listError: undefined, moreError: undefined, loadingMore: false };

/**
 * Fetches records by id so that each id has at most one request in flight: an event about a record
 * being fetched may not be in the answer already on the way, so it earns exactly one more fetch once
 * that answer is in, however many such events arrive meanwhile. Failures are dropped: a record gone
 * (deleted, or of another project) has nothing to show.
 */
export class Refetcher<T> {
  /** id → whether to fetch again once the request in flight is answered */
  private readonly fetching = new Map<string, boolean>();
  private stopped = false;

  constructor(
    private readonly fetchOne: (id: string) => Promise<T>,
    /** Receives each answer while not stopped; true asks for one more fetch of that id. */
    private readonly received: (item: T) => boolean
  ) {}

  /** Fetch `id`, or once more after the request in flight. */
  refetch(id: string): void {
    if (this.stopped) {
      return;
    }
    if (this.fetching.has(id)) {
      this.fetching.set(id, true);
      return;
    }
    this.fetching.set(id, false);
    this.fetchOne(id)
      .then(item => {
        if (!this.stopped && this.received(item)) {
          this.fetching.set(id, true);
        }
      })
      .catch(() => undefined)
      .finally(() => {
        const again = this.fetching.get(id);
        this.fetching.delete(id);
        if (again) {
          this.refetch(id);
        }
      });
  }

  /** Fetch `id` unless a request for it is already on the way (its answer is what was asked for). */
  find(id: string): void {
    if (!this.fetching.has(id)) {
      this.refetch(id);
    }
  }

  /** Whether an answer for `id` is still due (a record "on its way" is not asked for twice). */
  isFetching(id: string): boolean {
    return this.fetching.has(id);
  }

  /** The list is gone: answers still on the way are dropped and nothing more is asked. */
  stop(): void {
    this.stopped = true;
  }
}

const NOTHING: ReadonlySet<string> = new Set<string>();

/**
 * Jobs: a state event is news when it is newer than the job as shown (`updated_at`, written with the
 * event), or when the job is not shown at all (a job submitted elsewhere, or one on an older page).
 * Judged by the rendered list, so a job handed in by the view counts as known at once.
 */
export function jobsTracker(current: () => JobsData): ListTracker<Job, Page<'Job'>> {
  return {
    paged: () => undefined,
    fetched: () => false,
    affected(events) {
      const jobs = new Map((current().jobs ?? []).map(job => [job.id, job]));
      const stale = new Set<string>();
      for (const event of events) {
        if (event.type === 'state' && isNewer(event, jobs.get(event.job_id))) {
          stale.add(event.job_id);
        }
      }
      return { stale, found: NOTHING };
    }
  };
}

/**
 * Evaluation runs: events name a run's job, not the run, so the tracker keeps job id → the newest
 * record of its run fetched for this read. An unknown job's events are not all news: the socket
 * replays the project's history, and anything at or before the newest listed run's creation (the
 * horizon) belongs to jobs that are not listed runs. After it, an item-progress event names a run
 * started since the list was read (found), and a state event is remembered, because the run it
 * belongs to may be being fetched right now with an older state.
 */
export function runsTracker(): ListTracker<Run, RunPage> {
  const known = new Map<string, Run>(); // job id → its run
  const unmatched = new Map<string, number>(); // job id → its newest state event (µs)
  let horizon = 0; // µs: an unlisted run's events before this are history, not new runs
  return {
    paged(page, first) {
      if (first) {
        horizon = page.items.length > 0 ? micros(page.items[0].created_at) : 0;
        page.items.forEach(run => known.set(run.job_id, run));
      } else {
        // An older page never replaces a record fetched since (it may be fresher).
        page.items.forEach(run => known.has(run.job_id) || known.set(run.job_id, run));
      }
    },
    fetched(run) {
      known.set(run.job_id, run);
      // Its job moved on while we asked (a run found by its progress): ask once more.
      const seen = unmatched.get(run.job_id);
      unmatched.delete(run.job_id);
      return seen !== undefined && seen > runMicros(run);
    },
    affected(events) {
      const stale = new Set<string>();
      const found = new Set<string>();
      for (const event of events) {
        const run = known.get(event.job_id);
        if (run !== undefined) {
          if (event.type === 'state' && isNews(event, run)) {
            stale.add(run.id);
          }
          continue;
        }
        if (micros(event.at) <= horizon) {
          continue; // replayed history of a job that is not a listed run
        }
        const progress = itemProgress(event);
        if (progress !== null) {
          found.add(progress.run_id); // a run started after the list was read
        } else if (event.type === 'state') {
          unmatched.delete(event.job_id); // re-inserted: the oldest entry is the one let go
          unmatched.set(event.job_id, micros(event.at));
          if (unmatched.size > MAX_UNMATCHED) {
            unmatched.delete(unmatched.keys().next().value as string);
          }
        }
      }
      return { stale, found };
    }
  };
}

/** The jobs view's list: every page merges newer-wins by `updated_at` (jobState.ts), logs included. */
export const jobsSource: LiveListSource<Job, Page<'Job'>, JobsData> = {
  initial: EMPTY,
  reduce(data, change) {
    switch (change.type) {
      case 'reset':
      case 'events':
        return jobsReducer(data, change);
      case 'loaded':
      case 'more':
        return jobsReducer(data, { type: 'loaded', jobs: change.page.items });
      case 'upsert':
        return jobsReducer(data, { type: 'upsert', job: change.item });
    }
  },
  fetchPage: (api, project, cursor) => api.listJobs(project, PAGE_SIZE, cursor),
  fetchOne: (api, project, id) => api.getJob(project, id),
  track: jobsTracker
};

/** The evaluations view's list: the first page replaces, older pages only add (evalState.ts). */
export const runsSource: LiveListSource<Run, RunPage, RunsData> = {
  initial: EMPTY_RUNS,
  reduce(data, change) {
    switch (change.type) {
      case 'reset':
      case 'events':
      case 'loaded':
      case 'more':
        return runsReducer(data, change);
      case 'upsert':
        return runsReducer(data, { type: 'upsert', run: change.item });
    }
  },
  fetchPage: (api, project, cursor) => api.listRuns(project, { limit: PAGE_SIZE, cursor }),
  fetchOne: (api, project, id) => api.getRun(project, id),
  track: () => runsTracker()
};

/** Where a session sends what it learns: the hook's state in the views, plain variables in the tests. */
export interface LiveListHost<T, P, S> {
  dispatch: (change: ListChange<T, P>) => void;
  current: () => S;
  onPaging: (paging: Paging) => void;
  onStatus: (status: SocketStatus) => void;
}

/** Something that delivers the project's job events until disposed (a `JobEventSocket` outside tests). */
export type OpenEvents = (
  api: AgiflowApi,
  project: string,
  onEvents: (events: JobEvent[]) => void,
  onStatus: (status: SocketStatus) => void
) => { dispose(): void };

const openJobEvents: OpenEvents = (api, project, onEvents, onStatus) =>
  new JobEventSocket(api, project, { onEvents, onStatus });

/**
 * One read of one project's list, from the first page until `stop()`. The socket opens only once the
 * first page is in: it replays the project's events from the start, and those are judged against the
 * listed records. A dropped socket resumes after the last event it delivered, so what happened while
 * it was away arrives as one more batch and refetches exactly the records it outdated.
 */
export class LiveListSession<T, P extends Paged<T>, S> {
  private live = true;
  private socket: { dispose(): void } | null = null;
  private paging: Paging = NO_PAGING;
  private readonly tracker: ListTracker<T, P>;
  private readonly refetcher: Refetcher<T>;

  constructor(
    private readonly source: LiveListSource<T, P, S>,
    private readonly api: AgiflowApi,
    private readonly project: string,
    private readonly host: LiveListHost<T, P, S>,
    private readonly openEvents: OpenEvents = openJobEvents
  ) {
    this.tracker = source.track(host.current);
    this.refetcher = new Refetcher<T>(
      id => source.fetchOne(api, project, id),
      item => {
        const again = this.tracker.fetched(item);
        this.host.dispatch({ type: 'upsert', item });
        return again;
      }
    );
  }

  start(): void {
    this.host.dispatch({ type: 'reset' });
    this.update(NO_PAGING);
    this.source.fetchPage(this.api, this.project, null).then(
      page => {
        if (!this.live) {
          return;
        }
        this.tracker.paged(page, true);
        this.host.dispatch({ type: 'loaded', page });
        this.update({ cursor: page.next_cursor ?? null });
        this.socket = this.openEvents(
          this.api,
          this.project,
          events => this.receive(events),
          status => this.live && this.host.onStatus(status)
        );
      },
      (reason: unknown) => this.live && this.update({ listError: errorMessage(reason) })
    );
  }

  /** The next older page; ignored while one is on the way (the same cursor would answer the same page). */
  loadMore(): void {
    const cursor = this.paging.cursor;
    if (!this.live || cursor === null || this.paging.loadingMore) {
      return;
    }
    this.update({ loadingMore: true, moreError: undefined });
    this.source.fetchPage(this.api, this.project, cursor).then(
      page => {
        if (this.live) {
          this.tracker.paged(page, false);
          this.host.dispatch({ type: 'more', page });
          this.update({ cursor: page.next_cursor ?? null, loadingMore: false });
        }
      },
      (reason: unknown) => this.live && this.update({ moreError: errorMessage(reason), loadingMore: false })
    );
  }

  stop(): void {
    this.live = false;
    this.refetcher.stop();
    this.socket?.dispose();
    this.socket = null;
  }

  private receive(events: JobEvent[]): void {
    if (!this.live) {
      return;
    }
    const { stale, found } = this.tracker.affected(events);
    this.host.dispatch({ type: 'events', events });
    stale.forEach(id => this.refetcher.refetch(id));
    found.forEach(id => this.refetcher.find(id));
  }

  private update(patch: Partial<Paging>): void {
    this.paging = { ...this.paging, ...patch };
    this.host.onPaging(this.paging);
  }
}

export interface LiveList<T, S> {
  data: S;
  /** an older page can be asked for */
  hasMore: boolean;
  listError: string | undefined;
  moreError: string | undefined;
  loadingMore: boolean;
  status: SocketStatus;
  loadMore: () => void;
  /** Read the list again from its first page, with a new socket. */
  reload: () => void;
  /** A record the view got by itself (submitted, cancelled…), shown before its events arrive. */
  upsert: (item: T) => void;
}

/**
 * The project's list, kept live: a new read on every change of project and on `reload()`, none while
 * no project is chosen. `source` should be a module constant: a new one starts a new read.
 */
export function useLiveList<T, P extends Paged<T>, S>(
  api: AgiflowApi,
  project: string | null,
  source: LiveListSource<T, P, S>
): LiveList<T, S> {
  const [data, dispatch] = React.useReducer(source.reduce, source.initial);
  const [paging, setPaging] = React.useState<Paging>(NO_PAGING);
  // Set by the socket only: a new read keeps showing the previous socket's status until its own opens.
  const [status, setStatus] = React.useState<SocketStatus>('closed');
  const [generation, setGeneration] = React.useState(0);
  const dataRef = React.useRef(data);
  dataRef.current = data;
  const sessionRef = React.useRef<LiveListSession<T, P, S> | null>(null);

  React.useEffect(() => {
    if (project === null) {
      return;
    }
    const session = new LiveListSession(source, api, project, {
      dispatch,
      current: () => dataRef.current,
      onPaging: setPaging,
      onStatus: setStatus
    });
    sessionRef.current = session;
    session.start();
    return () => session.stop();
  }, [api, project, generation, source]);

  const loadMore = React.useCallback(() => sessionRef.current?.loadMore(), []);
  const reload = React.useCallback(() => setGeneration(g => g + 1), []);
  const upsert = React.useCallback((item: T) => dispatch({ type: 'upsert', item }), []);
  return {
    data,
    hasMore: paging.cursor !== null,
    listError: paging.listError,
    moreError: paging.moreError,
    loadingMore: paging.loadingMore,
    status,
    loadMore,
    reload,
    upsert
  };
}
