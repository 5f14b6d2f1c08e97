/** The time ranges the traces and dashboard views offer, each with the bucket its charts use. */
import type { MetricsBucket } from './types';

export type RangeKey = '1h' | '24h' | '7d' | '30d';

export interface TimeRange {
  key: RangeKey;
  label: string;
  ms: number;
  /** one chart point per bucket: about 24–720 points per range */
  bucket: MetricsBucket;
}

const HOUR = 3_600_000;

export const TIME_RANGES: readonly TimeRange[] = [
  { key: '1h', label: 'Last hour', ms: HOUR, bucket: 'minute' },
  { key: '24h', label: 'Last 24 hours', ms: 24 * HOUR, bucket: 'hour' },
  { key: '7d', label: 'Last 7 days', ms: 7 * 24 * HOUR, bucket: 'hour' },
  { key: '30d', label: 'Last 30 days', ms: 30 * 24 * HOUR, bucket: 'day' }
];

export const BUCKET_MS: Record<MetricsBucket, number> = {
  minute: 60_000,
  hour: HOUR,
  day: 24 * HOUR
};

export function timeRange(key: RangeKey): TimeRange {
  return TIME_RANGES.find(r => r.key === key) ?? TIME_RANGES[1];
}

/** [start, end) of a range ending now, as ISO strings for the API. */
export function rangeBounds(key: RangeKey, now: number = Date.now()): { start: string; end: string } {
  return { start: new Date(now - timeRange(key).ms).toISOString(), end: new Date(now).toISOString() };
}
