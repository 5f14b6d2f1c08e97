import * as React from 'react';

import type { AgiflowApi } from './api';
import { EchoBadge, asText, costTitle, formatCost, formatLatency, formatPercent, formatScore } from './EvalBadges';
import { ErrorNotice } from './ErrorNotice';
import { JobStateBadge } from './JobBadges';
import type { Change, Comparison, ItemComparison, ItemResult, Run } from './types';
import { usePages } from './usePages';

export interface EvalCompareProps {
  api: AgiflowApi;
  project: string;
  /** the run the other is measured against */
  baseline: Run;
  other: Run;
  onClose: () => void;
}

const ITEMS_PAGE = 50;

/**
 * Two runs side by side: their aggregates, how many items regressed (pass →
 * fail), improved (fail → pass) or kept their verdict, with score moves shown
 * beside the verdicts rather than counted as changes, and the changed items.
 * Fetched again when either run's state moves.
 */
export function EvalCompare({ api, project, baseline, other, onClose }: EvalCompareProps): JSX.Element {
  const pages = usePages<Comparison, ItemComparison>(
    cursor => api.compareRuns(project, [baseline.id, other.id], { cursor, limit: ITEMS_PAGE }),
    [api, project, baseline.id, other.id],
    `${baseline.state}/${other.state}`
  );
  const comparison = pages.first;
  // The live rows know better than the comparison fetched at some point of a run.
  const runs = [baseline, other];

  return (
    <div className="agiflow-prompt-detail agiflow-compare" data-testid="agiflow-compare">
      <div className="agiflow-detail-header">
        <h2 className="agiflow-detail-title">Compare runs</h2>
        <button type="button" className="agiflow-link-button agiflow-compare-close" onClick={onClose}>
          Close
        </button>
      </div>
      {comparison === undefined ? (
        pages.error !== undefined ? (
          <ErrorNotice message={pages.error} />
        ) : (
          <div className="agiflow-muted">Comparing…</div>
        )
      ) : (
        <div className="agiflow-compare-counts" data-testid="agiflow-compare-counts">
          <Count change="regressed" n={comparison.regressed} />
          <Count change="improved" n={comparison.improved} />
          <Count change="unchanged" n={comparison.unchanged} />
          <span className="agiflow-muted" data-testid="agiflow-compare-scores">
            ({comparison.score_up} score up, {comparison.score_down} score down)
          </span>
          {comparison.missing > 0 && <Count change="missing" n={comparison.missing} />}
          <span className="agiflow-muted">
            of <b>{other.name}</b> against the baseline
          </span>
        </div>
      )}
      <div className="agiflow-detail-body">
        <h3>Aggregates</h3>
        <AggregatesTable runs={runs} />
        <h3>Changed items</h3>
        {comparison !== undefined && pages.items.length === 0 ? (
          <div className="agiflow-muted">No item changed.</div>
        ) : (
          comparison !== undefined && <ChangedItems runs={runs} items={pages.items} />
        )}
        {comparison !== undefined && pages.error !== undefined && <ErrorNotice message={pages.error} />}
        {pages.hasMore && (
          <button
            type="button"
            className="agiflow-link-button agiflow-more"
            disabled={pages.loading}
            onClick={pages.loadMore}
          >
            {pages.loading ? 'Loading…' : 'Load more'}
          </button>
        )}
      </div>
    </div>
  );
}

function Count({ change, n }: { change: Change; n: number }): JSX.Element {
  return (
    <span className={`agiflow-chip agiflow-change agiflow-change-${change}`} data-testid={`agiflow-compare-${change}`}>
      <b className="agiflow-count">{n}</b> {change}
    </span>
  );
}

interface Row {
  name: string;
  value: (run: Run) => React.ReactNode;
}

function AggregatesTable({ runs }: { runs: Run[] }): JSX.Element {
  const evaluators = [...new Set(runs.flatMap(run => run.aggregates.evaluators.map(e => e.name)))];
  const rows: Row[] = [
    { name: 'State', value: run => <JobStateBadge state={run.state} /> },
    { name: 'Prompt', value: run => `${run.prompt.name} v${run.prompt.version}` },
    { name: 'Dataset', value: run => `${run.dataset.name} v${run.dataset.version}` },
    {
      name: 'Model',
      value: run => (
        <>
          {run.model.connection} · {run.model.model} <EchoBadge run={run} />
        </>
      )
    },
    { name: 'Items', value: run => `${run.aggregates.items_done}/${run.aggregates.items_total}` },
    { name: 'Pass rate', value: run => formatPercent(run.aggregates.pass_rate) },
    { name: 'Mean score', value: run => formatScore(run.aggregates.mean_score) },
    { name: 'Errors', value: run => String(run.aggregates.errors) },
    { name: 'Latency p50', value: run => formatLatency(run.aggregates.latency_p50_ms) },
    { name: 'Latency p95', value: run => formatLatency(run.aggregates.latency_p95_ms) },
    {
      name: 'Cost',
      value: run => <span title={costTitle(run.aggregates)}>{formatCost(run.aggregates)}</span>
    },
    ...evaluators.map(name => ({
      name: `${name} pass rate`,
      value: (run: Run) => formatPercent(run.aggregates.evaluators.find(e => e.name === name)?.pass_rate)
    }))
  ];
  return (
    <table className="agiflow-table agiflow-compare-table" data-testid="agiflow-compare-table">
      <thead>
        <tr>
          <th />
          {runs.map((run, i) => (
            <th key={run.id} data-run-id={run.id}>
              {run.name}
              {i === 0 && <span className="agiflow-chip agiflow-baseline">baseline</span>}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map(row => (
          <tr key={row.name}>
            <th scope="row">{row.name}</th>
            {runs.map(run => (
              <td key={run.id}>{row.value(run)}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ChangedItems({ runs, items }: { runs: Run[]; items: ItemComparison[] }): JSX.Element {
  return (
    <table className="agiflow-table agiflow-changed-table" data-testid="agiflow-changed-table">
      <thead>
        <tr>
          <th>Item</th>
          <th>Change</th>
          <th title="the last run's score minus the baseline's">Score Δ</th>
          {runs.map((run, i) => (
            <th key={run.id}>{i === 0 ? 'Baseline' : run.name}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {items.map(item => (
          <tr key={item.item_id} data-item-id={item.item_id} data-change={item.change}>
            <td className="agiflow-job-id" title={asText(item.input)}>
              {item.item_id}
            </td>
            <td>
              <span className={`agiflow-chip agiflow-change agiflow-change-${item.change}`}>{item.change}</span>
            </td>
            <td className="agiflow-score-delta">{formatDelta(item.score_delta)}</td>
            {item.results.map((result, i) => (
              <td key={runs[i]?.id ?? i}>
                <ResultCell result={result} />
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** `+0.04`, `-0.12`; a move that rounds to nothing is `0.00`, never `-0.00`. */
function formatDelta(delta: number | null): string {
  if (delta === null) {
    return formatScore(null);
  }
  const rounded = Number(delta.toFixed(2));
  return rounded === 0 ? '0.00' : `${rounded > 0 ? '+' : ''}${rounded.toFixed(2)}`;
}

function ResultCell({ result }: { result: ItemResult | null }): JSX.Element {
  if (result === null) {
    return <span className="agiflow-muted">not in this run</span>;
  }
  return (
    <div className="agiflow-compare-result" data-passed={String(result.passed)}>
      <div className="agiflow-cell-text">
        {result.error ? (
          <span className="agiflow-item-error">{result.error}</span>
        ) : (
          (result.output ?? <span className="agiflow-muted">no output</span>)
        )}
      </div>
      <div className="agiflow-muted">
        score {formatScore(result.score)} · {result.passed ? 'pass' : 'fail'}
      </div>
    </div>
  );
}
