/** How the traces and dashboard views write numbers, money and times. */
import { formatLatency } from './EvalBadges';

export { formatLatency as formatDuration };

const DASH = '—';

export function formatUsd(usd: number): string {
  if (usd === 0) {
    return '$0';
  }
  return usd < 0.01 ? `$${usd.toPrecision(2)}` : `$${usd.toFixed(2)}`;
}

/**
 * A total over spans, some of which may be unpriced (a model without a price):
 * with nothing priced the total is unknown and says so rather than showing $0.
 */
export function formatTotalCost(costUsd: number, unpriced: number): string {
  if (unpriced > 0) {
    return costUsd > 0 ? `${formatUsd(costUsd)} + unpriced` : 'unpriced';
  }
  return formatUsd(costUsd);
}

export function totalCostTitle(unpriced: number): string | undefined {
  return unpriced > 0 ? `${unpriced} span(s) used a model without a price: not in the total` : undefined;
}

/** One span's cost: null is unpriced (unknown model or no token counts) when it called a model. */
export function formatSpanCost(costUsd: number | null, model: string | null): string {
  if (costUsd !== null) {
    return formatUsd(costUsd);
  }
  return model ? 'unpriced' : DASH;
}

export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined) {
    return DASH;
  }
  if (Math.abs(n) >= 1e6) {
    return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  }
  if (Math.abs(n) >= 1e4) {
    return `${(n / 1e3).toFixed(0)}k`;
  }
  return n.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

export function formatTokens(tokensIn: number | null, tokensOut: number | null): string {
  if (tokensIn === null && tokensOut === null) {
    return DASH;
  }
  return `${formatCount(tokensIn ?? 0)} / ${formatCount(tokensOut ?? 0)}`;
}

/** Local date and time, to the second. */
export function formatDateTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** Milliseconds since 1970 of an ISO time; NaN when it is not one. */
export function epochMs(iso: string): number {
  return Date.parse(iso);
}
