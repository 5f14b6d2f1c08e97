import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BUCKET_MS, rangeBounds, timeRange, TIME_RANGES } from '../src/timeRanges';

describe('timeRanges', () => {
  it('offers the last hour, 24 hours, 7 days and 30 days, in that order', () => {
    assert.deepEqual(
      TIME_RANGES.map(r => r.key),
      ['1h', '24h', '7d', '30d']
    );
  });

  it('charts the last hour by the minute, a day or a week by the hour, a month by the day', () => {
    assert.equal(timeRange('1h').bucket, 'minute');
    assert.equal(timeRange('24h').bucket, 'hour');
    assert.equal(timeRange('7d').bucket, 'hour');
    assert.equal(timeRange('30d').bucket, 'day');
  });

  it('keeps every range between 24 and 720 chart points', () => {
    for (const range of TIME_RANGES) {
      const points = range.ms / BUCKET_MS[range.bucket];
      assert.ok(points >= 24 && points <= 720, `${range.key}: ${points} points`);
    }
  });

  it('answers the 24 hours for a key it does not know', () => {
    assert.equal(timeRange('1y' as never).key, '24h');
  });

  it('bounds a range as [now - its length, now) in ISO UTC', () => {
    const now = Date.parse('2026-03-01T12:00:00.000Z');
    assert.deepEqual(rangeBounds('1h', now), { start: '2026-03-01T11:00:00.000Z', end: '2026-03-01T12:00:00.000Z' });
    assert.deepEqual(rangeBounds('7d', now), { start: '2026-02-22T12:00:00.000Z', end: '2026-03-01T12:00:00.000Z' });
  });
});
