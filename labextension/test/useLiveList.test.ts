import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { AgiflowApi } from '../src/api';
import type { RunsData } from '../src/evalState';
import type { SocketStatus } from '../src/events';
import type { JobsData } from '../src/jobState';
import type { Job, JobEvent, Page, Run, RunPage } from '../src/types';
import {
  jobsSource,
  LiveListSession,
  LiveListSource,
  NO_PAGING,
  Paging,
  Refetcher,
  runsSource,
  runsTracker
} from '../src/useLiveList';
import type { Paged } from '../src/usePages';
import { aggregates, event, job, run } from './fixtures';

/** A promise the test settles when it wants to. */
interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => undefined;
  let reject: (reason: unknown) => void = () => undefined;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

/** Lets every promise chain that can move on do so. */
function settle(): Promise<void> {
  return new Promise(resolve => setImmediate(resolve));
}

/** Requests the test has answered. */
const answered = new WeakSet<object>();

/** Fetches by id that answer only when the test says so, in order of asking. */
class FakeFetches<T> {
  readonly asked: { id: string; answer: Deferred<T> }[] = [];

  fetch = (id: string): Promise<T> => {
    const answer = deferred<T>();
    this.asked.push({ id, answer });
    return answer.promise;
  };

  ids(): string[] {
    return this.asked.map(a => a.id);
  }

  /** Answers the oldest unanswered request with `item`. */
  async answer(item: T): Promise<void> {
    const next = this.asked.find(a => !answered.has(a));
    assert.ok(next, 'no request is waiting');
    answered.add(next);
    next.answer.resolve(item);
    await settle();
  }
}
describe('Refetcher', () => {
  it('fetches once more after the request in flight, however many events arrived meanwhile', async () => {
    const fetches = new FakeFetches<string>();
    const got: string[] = [];
    const refetcher = new Refetcher(fetches.fetch, item => {
      got.push(item);
      return false;
    });
    refetcher.refetch('a');
    refetcher.refetch('a');
    refetcher.refetch('a');
    refetcher.refetch('b');
    assert.deepEqual(fetches.ids(), ['a', 'b'], 'one request per id in flight');
    await fetches.answer('a1');
    assert.deepEqual(fetches.ids(), ['a', 'b', 'a'], 'exactly one more for the events during the first');
    await fetches.answer('b1');
    await fetches.answer('a2');
    assert.deepEqual(fetches.ids(), ['a', 'b', 'a'], 'nothing more once the news is in');
    assert.deepEqual(got, ['a1', 'b1', 'a2']);
    assert.equal(refetcher.isFetching('a'), false);
  });

  it('does not ask again for a record found while it is being fetched', async () => {
    const fetches = new FakeFetches<string>();
    const refetcher = new Refetcher(fetches.fetch, () => false);
    refetcher.find('r');
    refetcher.find('r');
    assert.deepEqual(fetches.ids(), ['r']);
    await fetches.answer('r1');
    assert.deepEqual(fetches.ids(), ['r']);
    refetcher.find('r');
    assert.deepEqual(fetches.ids(), ['r', 'r'], 'found again once the first answer is in');
  });

  it('fetches once more when the answer is already behind', async () => {
    const fetches = new FakeFetches<string>();
    const refetcher = new Refetcher(fetches.fetch, item => item === 'old');
    refetcher.refetch('x');
    await fetches.answer('old');
    assert.deepEqual(fetches.ids(), ['x', 'x']);
    await fetches.answer('new');
    assert.deepEqual(fetches.ids(), ['x', 'x']);
  });

  it('drops a failed fetch but still repeats one asked for meanwhile', async () => {
    const fetches = new FakeFetches<string>();
    const refetcher = new Refetcher(fetches.fetch, () => false);
    refetcher.refetch('gone');
    refetcher.refetch('gone');
    fetches.asked[0].answer.reject(new Error('404'));
    answered.add(fetches.asked[0]);
    await settle();
    assert.deepEqual(fetches.ids(), ['gone', 'gone']);
  });

  it('drops answers and asks nothing once stopped', async () => {
    const fetches = new FakeFetches<string>();
    const got: string[] = [];
    const refetcher = new Refetcher(fetches.fetch, item => {
      got.push(item);
      return false;
    });
    refetcher.refetch('a');
    refetcher.refetch('a');
    refetcher.stop();
    await fetches.answer('late');
    refetcher.refetch('b');
    assert.deepEqual(got, []);
    assert.deepEqual(fetches.ids(), ['a']);
  });
});

/** A session of `source` against fake fetches and a fake socket, its state in plain variables. */
class Harness<T, P extends Paged<T>, S> {
  state: S;
  paging: Paging = NO_PAGING;
  statuses: SocketStatus[] = [];
  readonly pages: { cursor: string | null; answer: Deferred<P> }[] = [];
  readonly items = new FakeFetches<T>();
  socketsOpened = 0;
  socketsClosed = 0;
  private deliver: ((events: JobEvent[]) => void) | null = null;
  private status: ((status: SocketStatus) => void) | null = null;
  readonly session: LiveListSession<T, P, S>;

  constructor(
    private readonly source: LiveListSource<T, P, S>,
    private readonly makePage: (items: T[], next_cursor: string | null) => P
  ) {
    this.state = source.initial;
    const fake: LiveListSource<T, P, S> = {
      ...source,
      fetchPage: (_api, _project, cursor) => {
        const answer = deferred<P>();
        this.pages.push({ cursor, answer });
        return answer.promise;
      },
      fetchOne: (_api, _project, id) => this.items.fetch(id)
    };
    this.session = new LiveListSession(
      fake,
      {} as AgiflowApi,
      'default',
      {
        dispatch: change => (this.state = this.source.reduce(this.state, change)),
        current: () => this.state,
        onPaging: paging => (this.paging = paging),
        onStatus: status => this.statuses.push(status)
      },
      (_api, _project, onEvents, onStatus) => {
        this.socketsOpened += 1;
        this.deliver = onEvents;
        this.status = onStatus;
        onStatus('connecting');
        return { dispose: () => (this.socketsClosed += 1) };
      }
    );
  }

  async page(items: T[], next_cursor: string | null = null): Promise<void> {
    const waiting = this.pages.find(p => !answered.has(p));
    assert.ok(waiting, 'no page request is waiting');
    answered.add(waiting);
    waiting.answer.resolve(this.makePage(items, next_cursor));
    await settle();
  }

  events(...events: JobEvent[]): void {
    assert.ok(this.deliver, 'the socket is not open');
    this.deliver(events);
  }

  /** What the socket reports around a dropped connection; it resumes after the last event it delivered. */
  reconnect(): void {
    assert.ok(this.status, 'the socket is not open');
    this.status('reconnecting');
    this.status('live');
  }
}

function jobsHarness(): Harness<Job, Page<'Job'>, JobsData> {
  return new Harness(jobsSource, (items, next_cursor) => ({ items, next_cursor }));
}

function runsHarness(): Harness<Run, RunPage, RunsData> {
  return new Harness(runsSource, (items, next_cursor) => ({ items, next_cursor }));
}

const T0 = '2026-03-01T12:00:00.000000Z';
const T1 = '2026-03-01T12:00:01.000000Z';
const T2 = '2026-03-01T12:00:02.000000Z';
const T3 = '2026-03-01T12:00:03.000000Z';

function jobState(job_id: string, state: string, at: string, id = 1): JobEvent {
  return event({ id, job_id, type: 'state', at, data: { state } });
}

describe('LiveListSession (jobs)', () => {
  it('opens the socket only once the first page is in', async () => {
    const h = jobsHarness();
    h.session.start();
    const listed = (): string[] | undefined => h.state.jobs?.map(j => j.id);
    assert.equal(listed(), undefined);
    assert.equal(h.socketsOpened, 0);
    await h.page([job({ id: 'a' })], 'c2');
    assert.deepEqual(listed(), ['a']);
    assert.equal(h.paging.cursor, 'c2');
    assert.equal(h.socketsOpened, 1);
    assert.deepEqual(h.statuses, ['connecting']);
  });

  it('refetches a job only for a state event newer than the job shown, once per batch', async () => {
    const h = jobsHarness();
    h.session.start();
    await h.page([job({ id: 'a', updated_at: T1 }), job({ id: 'b', updated_at: T1 })]);
    h.events(
      jobState('a', 'running', T0, 1), // already in the record
      jobState('b', 'running', T2, 2),
      jobState('b', 'succeeded', T3, 3),
      event({ id: 4, job_id: 'a', type: 'log', at: T3, data: { text: 'hi' } })
    );
    assert.deepEqual(h.items.ids(), ['b']);
    assert.equal(h.state.jobs?.find(j => j.id === 'b')?.state, 'succeeded', 'applied before the refetch');
    assert.equal(h.state.logs.a?.length, 1);
  });

  it('repeats a refetch once when an event comes in while it is in flight', async () => {
    const h = jobsHarness();
    h.session.start();
    await h.page([job({ id: 'a', updated_at: T0 })]);
    h.events(jobState('a', 'running', T1, 1));
    h.events(jobState('a', 'succeeded', T2, 2));
    h.events(jobState('a', 'succeeded', T3, 3));
    assert.deepEqual(h.items.ids(), ['a']);
    await h.items.answer(job({ id: 'a', state: 'running', updated_at: T1 }));
    assert.deepEqual(h.items.ids(), ['a', 'a']);
    await h.items.answer(job({ id: 'a', state: 'succeeded', updated_at: T3 }));
    assert.deepEqual(h.items.ids(), ['a', 'a']);
    assert.equal(h.state.jobs?.[0].state, 'succeeded');
  });

  it('after a reconnect, refetches the jobs the missed events outdated and no others', async () => {
    const h = jobsHarness();
    h.session.start();
    await h.page([job({ id: 'a', updated_at: T1 }), job({ id: 'b', updated_at: T1 })]);
    h.reconnect();
    // The resumed socket's catch-up batch: b moved while the connection was down; a did not.
    h.events(jobState('a', 'running', T1, 5), jobState('b', 'failed', T2, 6));
    assert.deepEqual(h.items.ids(), ['b']);
    assert.deepEqual(h.statuses, ['connecting', 'reconnecting', 'live']);
    assert.equal(h.socketsOpened, 1, 'the same socket resumes');
  });

  it('appends older pages without duplicating a job shown', async () => {
    const h = jobsHarness();
    h.session.start();
    await h.page(
      [job({ id: 'c', created_at: T3, updated_at: T3 }), job({ id: 'b', created_at: T2, updated_at: T2 })],
      'p2'
    );
    h.session.loadMore();
    h.session.loadMore(); // a second click while the page is on the way
    assert.deepEqual(
      h.pages.map(p => p.cursor),
      [null, 'p2']
    );
    assert.equal(h.paging.loadingMore, true);
    await h.page([job({ id: 'b', created_at: T2, updated_at: T2 }), job({ id: 'a', created_at: T1, updated_at: T1 })]);
    assert.deepEqual(
      h.state.jobs?.map(j => j.id),
      ['c', 'b', 'a']
    );
    assert.deepEqual(h.paging, NO_PAGING);
    h.session.loadMore();
    assert.equal(h.pages.length, 2, 'no cursor, no request');
  });

  it('keeps the list when an older page fails, and says so apart from a failed list', async () => {
    const h = jobsHarness();
    h.session.start();
    await h.page([job({ id: 'a' })], 'p2');
    h.session.loadMore();
    const waiting = h.pages[1];
    answered.add(waiting);
    waiting.answer.reject(new Error('server down'));
    await settle();
    assert.equal(h.paging.moreError, 'server down');
    assert.equal(h.paging.listError, undefined);
    assert.equal(h.paging.loadingMore, false);
    assert.equal(h.paging.cursor, 'p2', 'the same page can be asked for again');
    assert.equal(h.state.jobs?.length, 1);
  });

  it('reports a failed first page and opens no socket', async () => {
    const h = jobsHarness();
    h.session.start();
    answered.add(h.pages[0]);
    h.pages[0].answer.reject(new Error('forbidden'));
    await settle();
    assert.equal(h.paging.listError, 'forbidden');
    assert.equal(h.socketsOpened, 0);
  });

  it('once stopped, closes the socket and drops every answer still on the way', async () => {
    const h = jobsHarness();
    h.session.start();
    await h.page([job({ id: 'a', updated_at: T0 })], 'p2');
    h.events(jobState('a', 'running', T1));
    h.session.loadMore();
    const before = h.state;
    h.session.stop();
    assert.equal(h.socketsClosed, 1);
    await h.items.answer(job({ id: 'a', state: 'running', updated_at: T1 }));
    await h.page([job({ id: 'z', created_at: '2026-02-01T00:00:00Z' })]);
    assert.equal(h.state, before);
  });
});

describe('LiveListSession (evaluation runs)', () => {
  it('maps events to runs by job and refetches a run whose state moved', async () => {
    const h = runsHarness();
    h.session.start();
    await h.page([run({ id: 'r1', job_id: 'j1', created_at: T1 })], 'p2');
    assert.equal(h.paging.cursor, 'p2');
    h.events(jobState('j1', 'running', T1, 1), jobState('j1', 'running', T2, 2));
    assert.deepEqual(h.items.ids(), ['r1']);
    assert.equal(h.state.runs?.[0].state, 'running');
  });

  it('ignores replayed history of jobs that are not listed runs, and finds a run started since', async () => {
    const h = runsHarness();
    h.session.start();
    await h.page([run({ id: 'r1', job_id: 'j1', created_at: T1 })]);
    const progress = (job_id: string, run_id: string, at: string, id: number): JobEvent =>
      event({ id, job_id, type: 'progress', at, data: { unit: 'items', run_id, done: 1, total: 10 } });
    h.events(progress('j0', 'r0', T0, 1), jobState('j0', 'running', T0, 2));
    assert.deepEqual(h.items.ids(), [], 'before the newest listed run: history');
    h.events(progress('j2', 'r2', T2, 3), progress('j2', 'r2', T2, 4));
    h.events(progress('j2', 'r2', T3, 5));
    assert.deepEqual(h.items.ids(), ['r2'], 'found once, not again while on the way');
    await h.items.answer(run({ id: 'r2', job_id: 'j2', state: 'running', created_at: T2, started_at: T2 }));
    assert.deepEqual(
      h.state.runs?.map(r => r.id),
      ['r2', 'r1']
    );
    // Known now: its state events are judged against the record like any listed run's.
    h.events(jobState('j2', 'succeeded', T3, 6));
    assert.deepEqual(h.items.ids(), ['r2', 'r2']);
  });

  it('fetches a found run once more when its job moved on while it was being fetched', async () => {
    const h = runsHarness();
    h.session.start();
    await h.page([]);
    h.events(
      event({ id: 1, job_id: 'j2', type: 'progress', at: T1, data: { unit: 'items', run_id: 'r2', done: 1, total: 2 } })
    );
    h.events(jobState('j2', 'succeeded', T3, 2)); // its run is not known yet: remembered
    assert.deepEqual(h.items.ids(), ['r2']);
    await h.items.answer(run({ id: 'r2', job_id: 'j2', state: 'running', created_at: T1, started_at: T1 }));
    assert.deepEqual(h.items.ids(), ['r2', 'r2']);
    await h.items.answer(
      run({ id: 'r2', job_id: 'j2', state: 'succeeded', created_at: T1, started_at: T1, finished_at: T3 })
    );
    assert.deepEqual(h.items.ids(), ['r2', 'r2']);
    assert.equal(h.state.runs?.[0].state, 'succeeded');
  });

  it('after a reconnect, refetches the runs the missed events outdated and no others', async () => {
    const h = runsHarness();
    h.session.start();
    await h.page([
      run({ id: 'r2', job_id: 'j2', state: 'running', created_at: T1, started_at: T2 }),
      run({ id: 'r1', job_id: 'j1', state: 'running', created_at: T0, started_at: T1 })
    ]);
    h.reconnect();
    h.events(jobState('j2', 'running', T2, 7), jobState('j1', 'succeeded', T3, 8));
    assert.deepEqual(h.items.ids(), ['r1']);
  });

  it('appends older pages without duplicating or replacing a run shown', async () => {
    const h = runsHarness();
    h.session.start();
    await h.page([run({ id: 'r2', job_id: 'j2', state: 'succeeded', created_at: T2, finished_at: T3 })], 'p2');
    h.session.loadMore();
    await h.page([
      run({ id: 'r2', job_id: 'j2', state: 'running', created_at: T2 }),
      run({ id: 'r1', job_id: 'j1', created_at: T1, aggregates: aggregates({ items_done: 3 }) })
    ]);
    assert.deepEqual(
      h.state.runs?.map(r => [r.id, r.state]),
      [
        ['r2', 'succeeded'],
        ['r1', 'queued']
      ]
    );
    assert.equal(h.paging.cursor, null);
    // The older page's run is known: its news refetches it.
    h.events(jobState('j1', 'running', T2, 9));
    assert.deepEqual(h.items.ids(), ['r1']);
  });
});

describe('runsTracker', () => {
  it('forgets the oldest remembered state event of an unknown job past its bound', () => {
    const tracker = runsTracker();
    tracker.paged({ items: [], next_cursor: null }, true);
    for (let i = 0; i <= 1000; i++) {
      tracker.affected([jobState(`j${i}`, 'running', T2, i + 1)]);
    }
    const behind = (job_id: string): Run => run({ id: `r-${job_id}`, job_id, created_at: T0, started_at: T1 });
    assert.equal(tracker.fetched(behind('j0')), false, 'the first one was let go');
    assert.equal(tracker.fetched(behind('j1')), true);
    assert.equal(tracker.fetched(behind('j1')), false, 'asked once');
  });
});
