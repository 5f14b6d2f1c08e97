import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { EMPTY, isNewer, jobsReducer, JobsData, micros } from '../src/jobState';
import { event, job } from './fixtures';

function loaded(...jobs: ReturnType<typeof job>[]): JobsData {
  return jobsReducer(EMPTY, { type: 'loaded', jobs });
}

describe('micros', () => {
  it('keeps the microseconds that Date.parse drops', () => {
    assert.equal(micros('2026-03-01T12:00:00.000001Z') - micros('2026-03-01T12:00:00Z'), 1);
    assert.ok(micros('2026-03-01T12:00:00.000002Z') > micros('2026-03-01T12:00:00.000001Z'));
  });

  it('reads an offset, and a time without one as UTC', () => {
    assert.equal(micros('2026-03-01T13:00:00.5+01:00'), micros('2026-03-01T12:00:00.500000Z'));
    assert.equal(micros('2026-03-01T12:00:00'), Date.parse('2026-03-01T12:00:00Z') * 1000);
  });
});

describe('jobsReducer', () => {
  it('has no jobs until the first page is loaded', () => {
    assert.equal(EMPTY.jobs, undefined);
    assert.deepEqual(jobsReducer(loaded(job()), { type: 'reset' }), EMPTY);
  });

  it('lists jobs newest first, by creation time to the microsecond', () => {
    const data = loaded(
      job({ id: 'a', created_at: '2026-03-01T12:00:00.000001Z' }),
      job({ id: 'c', created_at: '2026-03-01T12:00:00.000003Z' }),
      job({ id: 'b', created_at: '2026-03-01T12:00:00.000002Z' })
    );
    assert.deepEqual(
      data.jobs?.map(j => j.id),
      ['c', 'b', 'a']
    );
  });

  it('replaces a job by id with a fresher copy, never with an older one', () => {
    const data = loaded(job({ state: 'running', updated_at: '2026-03-01T12:00:05Z' }));
    const stale = jobsReducer(data, {
      type: 'upsert',
      job: job({ state: 'queued', updated_at: '2026-03-01T12:00:01Z' })
    });
    assert.equal(stale.jobs?.[0].state, 'running');
    const fresh = jobsReducer(data, {
      type: 'upsert',
      job: job({ state: 'succeeded', updated_at: '2026-03-01T12:00:09Z' })
    });
    assert.deepEqual(
      fresh.jobs?.map(j => j.state),
      ['succeeded']
    );
  });

  it('adds a job it did not know (a submission) in its place by time', () => {
    const data = loaded(job({ id: 'old', created_at: '2026-03-01T11:00:00Z' }));
    const next = jobsReducer(data, { type: 'upsert', job: job({ id: 'new', created_at: '2026-03-01T13:00:00Z' }) });
    assert.deepEqual(
      next.jobs?.map(j => j.id),
      ['new', 'old']
    );
  });

  it('applies a state event newer than the record at once', () => {
    const data = loaded(job({ state: 'queued', updated_at: '2026-03-01T12:00:00.000001Z' }));
    const next = jobsReducer(data, {
      type: 'events',
      events: [event({ type: 'state', at: '2026-03-01T12:00:00.000002Z', data: { state: 'running' } })]
    });
    assert.equal(next.jobs?.[0].state, 'running');
  });

  it('ignores a state event the record already holds (at or before its updated_at)', () => {
    const data = loaded(job({ state: 'succeeded', updated_at: '2026-03-01T12:00:10Z' }));
    for (const at of ['2026-03-01T12:00:10Z', '2026-03-01T12:00:02Z']) {
      const next = jobsReducer(data, {
        type: 'events',
        events: [event({ type: 'state', at, data: { state: 'running' } })]
      });
      assert.equal(next.jobs?.[0].state, 'succeeded', at);
    }
  });

  it("ignores an event of an earlier attempt, and moves to a later attempt's", () => {
    const data = loaded(job({ state: 'retrying', attempts: 2, updated_at: '2026-03-01T12:00:00Z' }));
    const earlier = jobsReducer(data, {
      type: 'events',
      events: [event({ type: 'state', attempt: 1, at: '2026-03-01T12:00:05Z', data: { state: 'failed' } })]
    });
    assert.equal(earlier.jobs?.[0].state, 'retrying');
    const later = jobsReducer(data, {
      type: 'events',
      events: [event({ type: 'state', attempt: 3, at: '2026-03-01T12:00:05Z', data: { state: 'running' } })]
    });
    assert.deepEqual(
      later.jobs?.map(j => [j.state, j.attempts]),
      [['running', 3]]
    );
  });

  it('counts cells done from a progress event, keeping the total when the event has none', () => {
    const data = loaded(job({ state: 'running', cells_total: 8 }));
    const next = jobsReducer(data, {
      type: 'events',
      events: [event({ type: 'progress', at: '2026-03-01T12:01:00Z', data: { done: 3 } })]
    });
    assert.deepEqual(
      next.jobs?.map(j => [j.cells_done, j.cells_total]),
      [[3, 8]]
    );
  });

  it("keeps every job's log chunks in order, stdout when the stream is not named", () => {
    const next = jobsReducer(loaded(job()), {
      type: 'events',
      events: [
        event({ id: 7, type: 'log', at: '2026-03-01T11:00:00Z', data: { stream: 'stderr', text: 'warn\n' } }),
        event({ id: 8, type: 'log', at: '2026-03-01T11:00:01Z', data: { text: 'hello\n' } }),
        event({ id: 9, job_id: 'job-2', type: 'log', at: '2026-03-01T11:00:02Z', data: { text: 'other' } })
      ]
    });
    assert.deepEqual(next.logs['job-1'], [
      { id: 7, attempt: 1, stream: 'stderr', text: 'warn\n' },
      { id: 8, attempt: 1, stream: 'stdout', text: 'hello\n' }
    ]);
    assert.deepEqual(
      next.logs['job-2'].map(c => c.text),
      ['other']
    );
  });

  it('keeps the last 2000 log chunks of a long run', () => {
    const events = Array.from({ length: 2005 }, (_, i) =>
      event({ id: i, type: 'log', at: '2026-03-01T12:00:00Z', data: { text: `line ${i}` } })
    );
    const chunks = jobsReducer(loaded(job()), { type: 'events', events }).logs['job-1'];
    assert.equal(chunks.length, 2000);
    assert.equal(chunks[0].text, 'line 5');
    assert.equal(chunks[1999].text, 'line 2004');
  });

  it('ignores events of a job it does not list', () => {
    const data = loaded(job());
    const next = jobsReducer(data, {
      type: 'events',
      events: [event({ job_id: 'elsewhere', type: 'state', at: '2026-03-02T00:00:00Z', data: { state: 'failed' } })]
    });
    assert.deepEqual(next.jobs, data.jobs);
  });
});

describe('isNewer', () => {
  it('says any event is news about a job not loaded yet', () => {
    assert.ok(isNewer(event({ type: 'state', at: '2020-01-01T00:00:00Z' }), undefined));
  });
});
