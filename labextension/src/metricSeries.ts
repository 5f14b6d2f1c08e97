/** The metrics API's points turned into what the dashboard draws: chart series and range totals. */
import { MAX_SERIES, Series } from './charts';
import type { MetricPoint, Metrics } from './types';

export interface Grouped {
  key: string;
  label: string;
  /** by time (ms) */
  points: Map<number, MetricPoint>;
  count: number;
}

/** The start of every bucket of [start, end), aligned like the server's (UTC `date_trunc`). */
export function bucketTimes(startIso: string, endIso: string, bucketMs: number): number[] {
  const start = Date.parse(startIso);
  const end = Date.parse(endIso);
  const times: number[] = [];
  for (let t = Math.floor(start / bucketMs) * bucketMs; t < end; t += bucketMs) {
    times.push(t);
  }
  return times;
}

export function groupLabel(group: MetricPoint['group']): string {
  if ('prompt_name' in group) {
    const name = group['prompt_name'];
    const version = group['prompt_version'];
    return name === null || name === undefined ? '(no prompt)' : `${name}${version === null ? '' : ` v${version}`}`;
  }
  const values = Object.values(group);
  if (values.length === 0) {
    return 'all';
  }
  return values.map(v => (v === null || v === '' ? '(none)' : String(v))).join(' · ');
}

/** The points per group, the busiest `MAX_SERIES` groups first; `hidden` counts the groups left out. */
export function groupPoints(metrics: Metrics): { groups: Grouped[]; hidden: number } {
  const byKey = new Map<string, Grouped>();
  for (const point of metrics.points) {
    const key = JSON.stringify(point.group);
    let g = byKey.get(key);
    if (!g) {
      g = { key, label: groupLabel(point.group), points: new Map(), count: 0 };
      byKey.set(key, g);
    }
    g.points.set(Date.parse(point.time), point);
    g.count += point.count ?? 0;
  }
  const all = [...byKey.values()].sort((a, b) => b.count - a.count || a.label.localeCompare(b.label));
  return { groups: all.slice(0, MAX_SERIES), hidden: Math.max(0, all.length - MAX_SERIES) };
}

type Pick = (p: MetricPoint) => number | null;

/**
 * One series of `pick` over `times`. A bucket without spans is absent from the
 * API's answer: for a sum (`zero`) that is 0, for a rate or a percentile it is
 * nothing to draw (null).
 */
export function seriesOf(name: string, group: Grouped, times: number[], pick: Pick, zero: boolean): Series {
  return {
    name,
    values: times.map(t => {
      const point = group.points.get(t);
      return point ? (pick(point) ?? (zero ? 0 : null)) : zero ? 0 : null;
    })
  };
}

export interface Totals {
  count: number;
  errors: number;
  errorRate: number | null;
  /** the highest p95 of any bucket: percentiles of buckets do not add up to the range's */
  worstP95: number | null;
  tokensIn: number;
  tokensOut: number;
  costUsd: number;
  unpriced: number;
}

export function totals(points: MetricPoint[]): Totals {
  const t: Totals = {
    count: 0,
    errors: 0,
    errorRate: null,
    worstP95: null,
    tokensIn: 0,
    tokensOut: 0,
    costUsd: 0,
    unpriced: 0
  };
  for (const p of points) {
    t.count += p.count ?? 0;
    t.errors += p.errors ?? 0;
    t.tokensIn += p.tokens_in ?? 0;
    t.tokensOut += p.tokens_out ?? 0;
    t.costUsd += p.cost_usd ?? 0;
    t.unpriced += p.unpriced_count ?? 0;
    if (p.latency_p95_ms !== null) {
      t.worstP95 = Math.max(t.worstP95 ?? 0, p.latency_p95_ms);
    }
  }
  t.errorRate = t.count > 0 ? t.errors / t.count : null;
  return t;
}
