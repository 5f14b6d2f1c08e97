import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { EMPTY_RUNS, isNews, itemProgress, RunsData, runsReducer } from '../src/evalState';
import type { Run } from '../src/types';
import { aggregates, event, run } from './fixtures';

function loaded(runs: Run[], next_cursor: string | null = null): RunsData {
  return runsReducer(EMPTY_RUNS, { type: 'loaded', page: { items: runs, next_cursor } });
}

function progress(data: Record<string, unknown>, at = '2026-03-01T12:00:30Z') {
  return event({ type: 'progress', at, data: { unit: 'items', run_id: 'run-1', ...data } });
}

describe('runsReducer', () => {
  it('lists the first page newest first and remembers where the next one starts', () => {
    const data = loaded(
      [run({ id: 'a', created_at: '2026-03-01T10:00:00Z' }), run({ id: 'b', created_at: '2026-03-01T11:00:00Z' })],
      'cursor-2'
    );
    assert.deepEqual(
      data.runs?.map(r => r.id),
      ['b', 'a']
    );
    assert.equal(data.nextCursor, 'cursor-2');
  });

  it('appends an older page without replacing a run already shown', () => {
    const data = loaded([run({ id: 'a', state: 'running', created_at: '2026-03-01T10:00:00Z' })], 'c');
    const more = runsReducer(data, {
      type: 'more',
      page: {
        items: [
          run({ id: 'a', state: 'queued', created_at: '2026-03-01T10:00:00Z' }),
          run({ id: 'z', created_at: '2026-03-01T09:00:00Z' })
        ],
        next_cursor: null
      }
    });
    assert.deepEqual(
      more.runs?.map(r => [r.id, r.state]),
      [
        ['a', 'running'],
        ['z', 'queued']
      ]
    );
    assert.equal(more.nextCursor, null);
  });

  it('replaces a run by id on upsert (a refetch) and adds a new one', () => {
    const data = loaded([run({ id: 'a' })]);
    const next = runsReducer(data, { type: 'upsert', run: run({ id: 'a', state: 'succeeded' }) });
    assert.deepEqual(
      next.runs?.map(r => r.state),
      ['succeeded']
    );
  });

  it('ignores events until the first page is loaded', () => {
    const next = runsReducer(EMPTY_RUNS, { type: 'events', events: [progress({ done: 1, total: 2 })] });
    assert.equal(next, EMPTY_RUNS);
  });

  it("moves a run's counts forward on an items progress event, and a queued run to running", () => {
    const data = loaded([run({ state: 'queued' })]);
    const next = runsReducer(data, {
      type: 'events',
      events: [progress({ done: 4, total: 10, passed: 3, errors: 1 })]
    });
    const shown = next.runs?.[0];
    assert.equal(shown?.state, 'running');
    assert.deepEqual(
      {
        done: shown?.aggregates.items_done,
        total: shown?.aggregates.items_total,
        passed: shown?.aggregates.passed,
        errors: shown?.aggregates.errors,
        rate: shown?.aggregates.pass_rate
      },
      { done: 4, total: 10, passed: 3, errors: 1, rate: 0.75 }
    );
  });

  it('never moves progress back on a replayed, older progress event', () => {
    const data = loaded([run({ state: 'running', aggregates: aggregates({ items_done: 6, passed: 6 }) })]);
    const next = runsReducer(data, { type: 'events', events: [progress({ done: 2, total: 10, passed: 1 })] });
    assert.equal(next, data);
  });

  it('applies a state event newer than the run record, and ignores one it already holds', () => {
    const data = loaded([run({ state: 'running', started_at: '2026-03-01T12:00:10Z' })]);
    const older = runsReducer(data, {
      type: 'events',
      events: [event({ type: 'state', at: '2026-03-01T12:00:05Z', data: { state: 'queued' } })]
    });
    assert.equal(older.runs?.[0].state, 'running');
    const newer = runsReducer(data, {
      type: 'events',
      events: [event({ type: 'state', at: '2026-03-01T12:01:00Z', data: { state: 'succeeded' } })]
    });
    assert.equal(newer.runs?.[0].state, 'succeeded');
  });

  it("matches events to runs by their job, not by the event's run id", () => {
    const data = loaded([run({ id: 'run-1', job_id: 'job-9' })]);
    const next = runsReducer(data, { type: 'events', events: [progress({ done: 1, total: 10 })] });
    assert.equal(next, data);
  });
});

describe('isNews', () => {
  it("compares with the run's newest timestamp: finished, else started, else created", () => {
    const finished = run({
      created_at: '2026-03-01T12:00:00Z',
      started_at: '2026-03-01T12:00:01Z',
      finished_at: '2026-03-01T12:05:00.000001Z'
    });
    assert.equal(isNews(event({ type: 'state', at: '2026-03-01T12:05:00.000001Z' }), finished), false);
    assert.equal(isNews(event({ type: 'state', at: '2026-03-01T12:05:00.000002Z' }), finished), true);
    assert.equal(isNews(event({ type: 'state', at: '2026-03-01T12:00:00.5Z' }), run()), true);
  });
});

describe('itemProgress', () => {
  it("reads an evaluation job's item counts, zero passed and errors when absent", () => {
    assert.deepEqual(itemProgress(progress({ done: 2, total: 5 })), {
      unit: 'items',
      run_id: 'run-1',
      done: 2,
      total: 5,
      passed: 0,
      errors: 0
    });
  });

  it("is null for a notebook's cell progress, a state event, or counts that are not numbers", () => {
    assert.equal(itemProgress(event({ type: 'progress', at: 'x', data: { done: 1, total: 3 } })), null);
    assert.equal(itemProgress(event({ type: 'state', at: 'x', data: { unit: 'items', run_id: 'r' } })), null);
    assert.equal(itemProgress(progress({ done: '2', total: 5 })), null);
  });
});
