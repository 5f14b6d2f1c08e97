import * as React from 'react';

import type { AgiflowApi } from './api';
import { Series, TimeChart } from './charts';
import { ErrorNotice } from './ErrorNotice';
import { formatPercent } from './EvalBadges';
import { Grouped, bucketTimes, groupPoints, seriesOf, totals } from './metricSeries';
import { StatusChip } from './SpanDetail';
import { BUCKET_MS, RangeKey, TIME_RANGES, rangeBounds, timeRange } from './timeRanges';
import { formatCount, formatDateTime, formatDuration, formatTotalCost, formatUsd, totalCostTitle } from './traceFormat';
import type { MetricPoint, Metrics, MetricsGroupBy, QueueStatus } from './types';
import { useProjectChoice } from './useProjectChoice';
import { useRequest } from './useRequest';
import { useSpanActivity } from './useSpanActivity';
import { LiveStatus } from './LiveToolbar';
import { Choice, FilterSelect } from './FilterSelect';
import { ManageFrame } from './ManageFrame';

export interface DashboardViewProps {
  api: AgiflowApi;
  /** Shows one trace in the traces view. */
  openTrace: (project: string, traceId: string) => void;
  /** Whether the view is on screen (not a background tab): auto-refresh asks only then. */
  isShown?: () => boolean;
}

/** Charts follow new spans (the traces' live socket); workers and the queue have no socket: asked this often. */
export const POLL_MS = 30_000;
/** However busy the project, the charts are asked again at most this often. */
const LIVE_MIN_MS = 5_000;
const RECENT_ERRORS = 10;
const GROUP_BY: readonly Choice<MetricsGroupBy | ''>[] = [
  { value: '', label: 'none' },
  { value: 'model', label: 'model' },
  { value: 'prompt_version', label: 'prompt version' },
  { value: 'span_name', label: 'span name' },
  { value: 'user', label: 'user' }
];

/**
 * A project's spans over a time range: summary tiles, charts from the metrics
 * rollups, the workers and the job queue, and the latest failed traces.
 */
export function DashboardView({ api, openTrace, isShown = () => true }: DashboardViewProps): JSX.Element {
  const choice = useProjectChoice(api);
  const project = choice.project;
  const [range, setRange] = React.useState<RangeKey>('24h');
  const [groupBy, setGroupBy] = React.useState<MetricsGroupBy | ''>('');
  const [auto, setAuto] = React.useState(true);
  // A new "now" on every refresh: the range slides with the clock.
  const [now, setNow] = React.useState(() => Date.now());
  const bucket = timeRange(range).bucket;
  const bounds = React.useMemo(() => rangeBounds(range, now), [range, now]);
  // The interval asks the latest `isShown` without restarting when a render passes a new one.
  const isShownRef = React.useRef(isShown);
  isShownRef.current = isShown;

  React.useEffect(() => {
    if (!auto) {
      return;
    }
    const timer = window.setInterval(() => {
      if (!document.hidden && isShownRef.current()) {
        setNow(Date.now());
      }
    }, POLL_MS);
    return () => window.clearInterval(timer);
  }, [auto]);
  const live = useSpanActivity(
    api,
    project,
    auto,
    () => {
      if (!document.hidden && isShownRef.current()) {
        setNow(Date.now());
      }
    },
    LIVE_MIN_MS
  );

  const metrics = useRequest(
    project === null ? null : () => api.getMetrics(project, { ...bounds, bucket, groupBy: groupBy || null }),
    [api, project, bounds, bucket, groupBy]
  );
  const status = useRequest(project === null ? null : () => api.getStatus(project), [api, project, now]);
  const errors = useRequest(
    project === null
      ? null
      : () => api.listTraces(project, { status: 'error', start: bounds.start, limit: RECENT_ERRORS }),
    [api, project, bounds]
  );
  const busy = metrics.loading || status.loading || errors.loading;
  const [updated, setUpdated] = React.useState<Date | null>(null);
  React.useEffect(() => setUpdated(metrics.data ? new Date() : null), [metrics.data]);

  return (
    <ManageFrame
      api={api}
      title="AGIFlow Dashboard"
      className="agiflow-dashboard"
      testId="agiflow-dashboard"
      ownLayout
      choice={choice}
      toolbar={
        <>
          <span className="agiflow-live" data-testid="agiflow-dashboard-updated">
            {busy ? 'updating…' : updated ? `updated ${updated.toLocaleTimeString()}` : ''}
          </span>
          {auto && <LiveStatus status={live} what="New spans" />}
          <label
            className="agiflow-toggle"
            title="Charts follow new spans as they are stored; workers and the queue are asked every 30 s"
          >
            <input
              type="checkbox"
              data-testid="agiflow-auto-refresh"
              checked={auto}
              onChange={event => setAuto(event.target.checked)}
            />
            <span>Auto-refresh</span>
          </label>
        </>
      }
      onReload={() => setNow(Date.now())}
      filters={
        <>
          <FilterSelect
            label="Range"
            testId="agiflow-dashboard-range"
            value={range}
            choices={TIME_RANGES.map(r => ({ value: r.key, label: `${r.label} (per ${r.bucket})` }))}
            onChange={setRange}
          />
          <FilterSelect
            label="Group by"
            testId="agiflow-dashboard-group-by"
            value={groupBy}
            choices={GROUP_BY}
            onChange={setGroupBy}
          />
        </>
      }
    >
      {({ project }) => (
        <div className="agiflow-dashboard-body">
          {metrics.error !== undefined ? (
            <ErrorNotice message={metrics.error} onRetry={metrics.reload} />
          ) : metrics.data === undefined ? (
            <div className="agiflow-status">Loading metrics…</div>
          ) : (
            <MetricsPanel metrics={metrics.data} />
          )}
          <div className="agiflow-dashboard-side">
            <section className="agiflow-dashboard-section">
              <h3>Workers and queue</h3>
              {status.error !== undefined ? (
                <ErrorNotice message={status.error} onRetry={status.reload} />
              ) : status.data === undefined ? (
                <div className="agiflow-muted">Loading…</div>
              ) : (
                <StatusPanel status={status.data} />
              )}
            </section>
            <section className="agiflow-dashboard-section">
              <h3>Recent errors</h3>
              {errors.error !== undefined ? (
                <ErrorNotice message={errors.error} onRetry={errors.reload} />
              ) : errors.data === undefined ? (
                <div className="agiflow-muted">Loading…</div>
              ) : errors.data.items.length === 0 ? (
                <div className="agiflow-muted" data-testid="agiflow-recent-errors-empty">
                  No failed traces in this range.
                </div>
              ) : (
                <ul className="agiflow-recent-errors" data-testid="agiflow-recent-errors">
                  {errors.data.items.map(trace => (
                    <li key={trace.trace_id}>
                      <button
                        type="button"
                        className="agiflow-prompt-item"
                        data-testid="agiflow-recent-error"
                        data-trace-id={trace.trace_id}
                        title="Open this trace in AGIFlow Traces"
                        onClick={() => openTrace(project, trace.trace_id)}
                      >
                        <span className="agiflow-prompt-item-head">
                          <span className="agiflow-prompt-name">{trace.name}</span>
                          <StatusChip status={trace.status} />
                        </span>
                        <span className="agiflow-prompt-item-meta agiflow-muted">
                          <span title={trace.start_time}>{formatDateTime(trace.start_time)}</span>
                          <span>{formatDuration(trace.duration_ms)}</span>
                          <span>
                            {trace.error_count}/{trace.span_count} spans failed
                          </span>
                        </span>
                      </button>
                    </li>
                  ))}
                </ul>
              )}
            </section>
          </div>
        </div>
      )}
    </ManageFrame>
  );
}

function MetricsPanel({ metrics }: { metrics: Metrics }): JSX.Element {
  const bucketMs = BUCKET_MS[metrics.bucket];
  const times = React.useMemo(() => bucketTimes(metrics.start, metrics.end, bucketMs), [metrics, bucketMs]);
  const { groups, hidden } = React.useMemo(() => groupPoints(metrics), [metrics]);
  const t = React.useMemo(() => totals(metrics.points), [metrics]);
  const grouped = metrics.group_by !== null;
  const by = grouped ? ` by ${metrics.group_by?.replace('_', ' ')}` : '';
  const each = (pick: (p: MetricPoint) => number | null, zero: boolean): Series[] =>
    groups.map((g: Grouped) => seriesOf(g.label, g, times, pick, zero));
  const only = groups[0];
  const single = (name: string, pick: (p: MetricPoint) => number | null, zero: boolean): Series[] =>
    only ? [seriesOf(name, only, times, pick, zero)] : [{ name, values: times.map(() => (zero ? 0 : null)) }];
  const ms = (v: number): string => formatDuration(v);
  const hiddenNote = hidden > 0 ? `${hidden} smaller group(s) not drawn` : undefined;

  return (
    <div className="agiflow-dashboard-main">
      <dl className="agiflow-run-summary agiflow-dashboard-tiles" data-testid="agiflow-dashboard-tiles">
        <Tile name="Spans" value={formatCount(t.count)} testId="agiflow-tile-spans" />
        <Tile
          name="Error rate"
          value={formatPercent(t.errorRate)}
          detail={`${t.errors} failed`}
          testId="agiflow-tile-error-rate"
        />
        <Tile
          name="Latency p95"
          value={formatDuration(t.worstP95)}
          detail={`worst ${metrics.bucket}`}
          title={`The highest p95 of any ${metrics.bucket} in the range (percentiles of ${metrics.bucket}s do not add up)`}
          testId="agiflow-tile-p95"
        />
        <Tile
          name="Tokens in / out"
          value={`${formatCount(t.tokensIn)} / ${formatCount(t.tokensOut)}`}
          testId="agiflow-tile-tokens"
        />
        <Tile
          name="Cost"
          value={formatTotalCost(t.costUsd, t.unpriced)}
          detail={t.unpriced > 0 ? `${t.unpriced} unpriced span(s)` : undefined}
          title={totalCostTitle(t.unpriced)}
          testId="agiflow-tile-cost"
        />
      </dl>
      <div className="agiflow-charts" data-testid="agiflow-charts">
        <TimeChart
          title={`Spans${by}`}
          unit="spans"
          testId="agiflow-chart-count"
          times={times}
          bucketMs={bucketMs}
          kind="bar"
          series={grouped ? each(p => p.count, true) : single('spans', p => p.count, true)}
          format={formatCount}
          note={hiddenNote}
        />
        <TimeChart
          title={`Error rate${by}`}
          unit="error rate"
          testId="agiflow-chart-errors"
          times={times}
          bucketMs={bucketMs}
          kind="line"
          series={grouped ? each(p => p.error_rate, false) : single('error rate', p => p.error_rate, false)}
          format={formatPercent}
          minMax={0.1}
        />
        <TimeChart
          title={grouped ? `Latency p95${by}` : 'Latency p50 / p95 / p99'}
          unit="latency"
          testId="agiflow-chart-latency"
          times={times}
          bucketMs={bucketMs}
          kind="line"
          series={
            grouped
              ? each(p => p.latency_p95_ms, false)
              : [
                  ...single('p50', p => p.latency_p50_ms, false),
                  ...single('p95', p => p.latency_p95_ms, false),
                  ...single('p99', p => p.latency_p99_ms, false)
                ]
          }
          format={ms}
        />
        <TimeChart
          title={grouped ? `Tokens (in + out)${by}` : 'Tokens in / out'}
          unit="tokens"
          testId="agiflow-chart-tokens"
          times={times}
          bucketMs={bucketMs}
          kind="bar"
          series={
            grouped
              ? each(p => (p.tokens_in ?? 0) + (p.tokens_out ?? 0), true)
              : [...single('in', p => p.tokens_in, true), ...single('out', p => p.tokens_out, true)]
          }
          format={formatCount}
        />
        <TimeChart
          title={`Cost${by}`}
          unit="USD"
          testId="agiflow-chart-cost"
          times={times}
          bucketMs={bucketMs}
          kind="bar"
          series={grouped ? each(p => p.cost_usd, true) : single('cost', p => p.cost_usd, true)}
          format={formatUsd}
          note={t.unpriced > 0 ? `${t.unpriced} span(s) without a price are not in the cost` : undefined}
        />
      </div>
    </div>
  );
}

function Tile(props: { name: string; value: string; detail?: string; title?: string; testId: string }): JSX.Element {
  return (
    <div className="agiflow-run-summary-cell agiflow-tile" data-testid={props.testId} title={props.title}>
      <dt>{props.name}</dt>
      <dd className="agiflow-tile-value">{props.value}</dd>
      {props.detail && <dd className="agiflow-tile-detail agiflow-muted">{props.detail}</dd>}
    </div>
  );
}

function StatusPanel({ status }: { status: QueueStatus }): JSX.Element {
  const bus = status.bus;
  return (
    <div data-testid="agiflow-dashboard-status">
      <dl className="agiflow-meta agiflow-status-meta">
        <dt>Workers alive</dt>
        <dd data-testid="agiflow-workers-alive">
          <span className={status.workers_alive > 0 ? undefined : 'agiflow-item-error'}>{status.workers_alive}</span>
        </dd>
        {bus && (
          <>
            <dt>Bus</dt>
            <dd title={bus.error ?? undefined}>
              {bus.backend} ·{' '}
              <span className={bus.state === 'down' ? 'agiflow-item-error' : undefined}>{bus.state}</span>
            </dd>
          </>
        )}
        <dt>Jobs queued</dt>
        <dd>{status.queued}</dd>
        <dt>Dispatched</dt>
        <dd>{status.dispatched}</dd>
        <dt>Running</dt>
        <dd>{status.running}</dd>
        <dt>Oldest queued</dt>
        <dd>{status.oldest_queued_seconds === null ? '—' : formatDuration(status.oldest_queued_seconds * 1000)}</dd>
      </dl>
      {status.workers.length > 0 && (
        <table className="agiflow-table agiflow-worker-table">
          <thead>
            <tr>
              <th>Worker</th>
              <th>Topics</th>
              <th className="agiflow-num">Running</th>
              <th>Heartbeat</th>
            </tr>
          </thead>
          <tbody>
            {status.workers.map(w => (
              <tr key={w.id} className={w.alive ? undefined : 'agiflow-muted'}>
                <td title={w.id}>
                  {w.hostname}:{w.pid}
                </td>
                <td>{w.topics.join(', ')}</td>
                <td className="agiflow-num">
                  {w.running}/{w.concurrency}
                </td>
                <td title={w.heartbeat_at}>{w.alive ? 'alive' : `stale since ${formatDateTime(w.heartbeat_at)}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
