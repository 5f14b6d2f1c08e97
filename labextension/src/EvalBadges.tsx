/** Small pieces every evaluations panel shows the same way: badges, the progress bar, numbers. */
import * as React from 'react';

import type { Run, RunAggregates } from './types';

/** The built-in echo connection called no model: say so wherever a run's model shows. */
export function EchoBadge({ run }: { run: Run }): JSX.Element | null {
  if (!run.model.builtin) {
    return null;
  }
  return (
    <span
      className="agiflow-chip agiflow-echo-badge"
      data-testid="agiflow-echo-badge"
      title="The built-in echo connection returns the rendered prompt; no model was called"
    >
      built-in echo
    </span>
  );
}

/** items done / items, as a bar and as numbers. */
export function RunProgress({ aggregates }: { aggregates: RunAggregates }): JSX.Element {
  const { items_done: done, items_total: total } = aggregates;
  const ratio = total ? Math.min(1, done / total) : 0;
  return (
    <span className="agiflow-job-progress agiflow-run-progress" title="items done / items">
      <span
        className="agiflow-job-progress-bar"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={done}
      >
        <span style={{ width: `${Math.round(ratio * 100)}%` }} />
      </span>
      <span className="agiflow-job-progress-text">
        {done}/{total}
      </span>
    </span>
  );
}

/** Pass or fail of one item (or one evaluator on it); null: not scored. */
export function PassChip({ passed }: { passed: boolean | null }): JSX.Element {
  const kind = passed === null ? 'none' : passed ? 'pass' : 'fail';
  return <span className={`agiflow-chip agiflow-pass agiflow-pass-${kind}`}>{passed === null ? 'n/a' : kind}</span>;
}

const DASH = '—';

export function formatPercent(ratio: number | null | undefined): string {
  return ratio === null || ratio === undefined ? DASH : `${Math.round(ratio * 1000) / 10}%`;
}

export function formatScore(score: number | null | undefined): string {
  return score === null || score === undefined ? DASH : score.toFixed(2);
}

export function formatLatency(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) {
    return DASH;
  }
  if (ms > 0 && ms < 1) {
    return '<1 ms';
  }
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** USD; a run with unpriced items has no total, and says so rather than showing 0. */
export function formatCost(aggregates: Pick<RunAggregates, 'cost' | 'unpriced_items'>): string {
  const { cost, unpriced_items: unpriced } = aggregates;
  if (cost === null) {
    return unpriced > 0 ? 'unpriced' : DASH;
  }
  if (cost === 0) {
    return '$0';
  }
  return cost < 0.01 ? `$${cost.toPrecision(2)}` : `$${cost.toFixed(2)}`;
}

export function costTitle(aggregates: Pick<RunAggregates, 'cost' | 'unpriced_items'>): string | undefined {
  return aggregates.unpriced_items > 0
    ? `${aggregates.unpriced_items} item(s) used a model without a price: no total cost`
    : undefined;
}

export function formatTime(iso: string | null): string {
  if (iso === null) {
    return DASH;
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** Any JSON value as one line of text (strings as they are). */
export function asText(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}
