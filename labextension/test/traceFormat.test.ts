import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  epochMs,
  formatCount,
  formatDateTime,
  formatDuration,
  formatSpanCost,
  formatTokens,
  formatTotalCost,
  formatUsd,
  totalCostTitle
} from '../src/traceFormat';

describe('formatUsd', () => {
  it('writes cents to two decimals, less than a cent to two significant digits, nothing as $0', () => {
    assert.equal(formatUsd(0), '$0');
    assert.equal(formatUsd(1.5), '$1.50');
    assert.equal(formatUsd(0.01), '$0.01');
    assert.equal(formatUsd(0.000123), '$0.00012');
  });
});

describe('formatTotalCost', () => {
  it('says a total with unpriced spans leaves them out, and is not $0 when nothing was priced', () => {
    assert.equal(formatTotalCost(0.5, 0), '$0.50');
    assert.equal(formatTotalCost(0.5, 3), '$0.50 + unpriced');
    assert.equal(formatTotalCost(0, 3), 'unpriced');
    assert.equal(formatTotalCost(0, 0), '$0');
  });

  it('explains the unpriced spans in the title, and has no title without them', () => {
    assert.equal(totalCostTitle(2), '2 span(s) used a model without a price: not in the total');
    assert.equal(totalCostTitle(0), undefined);
  });
});

describe('formatSpanCost', () => {
  it("calls a model call's missing cost unpriced, and a span without a model's a dash", () => {
    assert.equal(formatSpanCost(0.02, 'gpt-4o'), '$0.02');
    assert.equal(formatSpanCost(null, 'gpt-4o'), 'unpriced');
    assert.equal(formatSpanCost(null, null), '—');
  });
});

describe('formatCount', () => {
  it('abbreviates from ten thousand (k) and a million (M), a dash for nothing', () => {
    assert.equal(formatCount(null), '—');
    assert.equal(formatCount(undefined), '—');
    assert.equal(formatCount(9999), '9,999');
    assert.equal(formatCount(0.125), '0.13');
    assert.equal(formatCount(12_345), '12k');
    assert.equal(formatCount(1_500_000), '1.5M');
    assert.equal(formatCount(25_000_000), '25M');
  });
});

describe('formatTokens', () => {
  it('writes in / out, a dash when neither is known', () => {
    assert.equal(formatTokens(1200, 34), '1,200 / 34');
    assert.equal(formatTokens(null, 5), '0 / 5');
    assert.equal(formatTokens(null, null), '—');
  });
});

describe('formatDuration', () => {
  it('writes milliseconds below a second, seconds above, and "<1 ms" for a sliver', () => {
    assert.equal(formatDuration(0.4), '<1 ms');
    assert.equal(formatDuration(0), '0 ms');
    assert.equal(formatDuration(250.4), '250 ms');
    assert.equal(formatDuration(1234), '1.23 s');
    assert.equal(formatDuration(12_345), '12.3 s');
    assert.equal(formatDuration(null), '—');
  });
});

describe('times', () => {
  it('shows a time that is not ISO as it came, and its epoch as NaN', () => {
    assert.equal(formatDateTime('yesterday'), 'yesterday');
    assert.ok(Number.isNaN(epochMs('yesterday')));
    assert.equal(epochMs('2026-03-01T00:00:00Z'), Date.UTC(2026, 2, 1));
  });
});
