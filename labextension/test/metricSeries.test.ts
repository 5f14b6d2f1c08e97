import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { MAX_SERIES } from '../src/charts';
import { bucketTimes, groupLabel, groupPoints, seriesOf, totals } from '../src/metricSeries';
import type { Metrics } from '../src/types';
import { point } from './fixtures';

const HOUR = 3_600_000;

function metrics(points: Metrics['points']): Metrics {
  return { start: '2026-03-01T00:00:00Z', end: '2026-03-01T03:00:00Z', bucket: 'hour', group_by: 'model', points };
}

describe('bucketTimes', () => {
  it('starts every bucket of [start, end) on a UTC boundary, as the server truncates', () => {
    assert.deepEqual(
      bucketTimes('2026-03-01T10:20:00Z', '2026-03-01T13:00:00Z', HOUR).map(t => new Date(t).toISOString()),
      ['2026-03-01T10:00:00.000Z', '2026-03-01T11:00:00.000Z', '2026-03-01T12:00:00.000Z']
    );
  });

  it('has no bucket for an empty range', () => {
    assert.deepEqual(bucketTimes('2026-03-01T10:00:00Z', '2026-03-01T10:00:00Z', HOUR), []);
  });
});

describe('groupLabel', () => {
  it("says 'all' without a group, joins values with · and names an empty one '(none)'", () => {
    assert.equal(groupLabel({}), 'all');
    assert.equal(groupLabel({ model: 'gpt-4o' }), 'gpt-4o');
    assert.equal(groupLabel({ model: null }), '(none)');
    assert.equal(groupLabel({ span_name: '', user: 'olivia' }), '(none) · olivia');
  });

  it('writes a prompt group as name and version', () => {
    assert.equal(groupLabel({ prompt_name: 'greeting', prompt_version: 3 }), 'greeting v3');
    assert.equal(groupLabel({ prompt_name: 'greeting', prompt_version: null }), 'greeting');
    assert.equal(groupLabel({ prompt_name: null, prompt_version: null }), '(no prompt)');
  });
});

describe('groupPoints', () => {
  it('collects each group’s points by time, busiest group first', () => {
    const { groups, hidden } = groupPoints(
      metrics([
        point({ time: '2026-03-01T00:00:00Z', group: { model: 'small' }, count: 1 }),
        point({ time: '2026-03-01T00:00:00Z', group: { model: 'big' }, count: 5 }),
        point({ time: '2026-03-01T01:00:00Z', group: { model: 'small' }, count: 2 })
      ])
    );
    assert.deepEqual(
      groups.map(g => [g.label, g.count, [...g.points.keys()].map(t => new Date(t).toISOString())]),
      [
        ['big', 5, ['2026-03-01T00:00:00.000Z']],
        ['small', 3, ['2026-03-01T00:00:00.000Z', '2026-03-01T01:00:00.000Z']]
      ]
    );
    assert.equal(hidden, 0);
  });

  it(`draws at most ${MAX_SERIES} groups and counts the ones left out`, () => {
    const points = Array.from({ length: MAX_SERIES + 2 }, (_, i) =>
      point({ time: '2026-03-01T00:00:00Z', group: { model: `m${i}` }, count: i })
    );
    const { groups, hidden } = groupPoints(metrics(points));
    assert.equal(groups.length, MAX_SERIES);
    assert.equal(hidden, 2);
    assert.equal(groups[0].label, `m${MAX_SERIES + 1}`);
    assert.ok(!groups.some(g => g.label === 'm0' || g.label === 'm1'));
  });
});

describe('seriesOf', () => {
  const times = bucketTimes('2026-03-01T00:00:00Z', '2026-03-01T03:00:00Z', HOUR);
  const { groups } = groupPoints(
    metrics([
      point({ time: '2026-03-01T00:00:00Z', count: 4, latency_p95_ms: 120 }),
      point({ time: '2026-03-01T02:00:00Z', count: 1, latency_p95_ms: null })
    ])
  );

  it('counts a bucket without spans as 0 in a sum', () => {
    assert.deepEqual(
      seriesOf('spans', groups[0], times, p => p.count, true),
      { name: 'spans', values: [4, 0, 1] }
    );
  });

  it('leaves a bucket without spans (or without the measure) empty for a percentile', () => {
    assert.deepEqual(seriesOf('p95', groups[0], times, p => p.latency_p95_ms, false).values, [120, null, null]);
  });
});

describe('totals', () => {
  it('adds the counts, tokens and cost of every bucket and derives the error rate', () => {
    const t = totals([
      point({ time: 'a', count: 8, errors: 1, tokens_in: 100, tokens_out: 10, cost_usd: 0.5, unpriced_count: 0 }),
      point({ time: 'b', count: 2, errors: 1, tokens_in: 50, tokens_out: 5, cost_usd: 0.25, unpriced_count: 2 })
    ]);
    assert.deepEqual(t, {
      count: 10,
      errors: 2,
      errorRate: 0.2,
      worstP95: null,
      tokensIn: 150,
      tokensOut: 15,
      costUsd: 0.75,
      unpriced: 2
    });
  });

  it('takes the worst p95 of any bucket: percentiles do not add up', () => {
    const t = totals([
      point({ time: 'a', latency_p95_ms: 300 }),
      point({ time: 'b', latency_p95_ms: 900 }),
      point({ time: 'c', latency_p95_ms: null })
    ]);
    assert.equal(t.worstP95, 900);
  });

  it('has no error rate and no p95 without spans', () => {
    const t = totals([]);
    assert.equal(t.errorRate, null);
    assert.equal(t.worstP95, null);
  });
});
