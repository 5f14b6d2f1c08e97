import * as React from 'react';

import type { AgiflowApi } from './api';
import { ErrorNotice } from './ErrorNotice';
import { SpanDetail, StatusChip } from './SpanDetail';
import { SpanToDataset } from './SpanToDataset';
import { SpanTree, traceWindow } from './SpanTree';
import { TraceScores } from './TraceScores';
import { formatDateTime, formatDuration, formatTokens, formatTotalCost, totalCostTitle } from './traceFormat';
import type { TraceSpan, TraceSummary } from './types';
import { usePages } from './usePages';

/** Spans per request: a big trace's tree grows as it scrolls. */
const SPAN_PAGE = 200;

export interface TraceViewProps {
  api: AgiflowApi;
  project: string;
  traceId: string;
  /** the list's row, when the trace was opened from it (its totals cover every span) */
  summary?: TraceSummary;
  /** changes when the view is reloaded */
  refresh: number;
  onClose: () => void;
}

/**
 * One trace: its spans as a tree (loaded a page at a time, the next page as the
 * end of the tree scrolls into view), its scores, and the selected span in full.
 */
export function TraceView({ api, project, traceId, summary, refresh, onClose }: TraceViewProps): JSX.Element {
  const [retries, setRetries] = React.useState(0);
  const pages = usePages<{ items: TraceSpan[]; next_cursor: string | null }, TraceSpan>(
    cursor =>
      api
        .getTrace(project, traceId, { cursor, limit: SPAN_PAGE })
        .then(detail => ({ items: detail.spans, next_cursor: detail.next_cursor })),
    [api, project, traceId],
    `${refresh}-${retries}`
  );
  const spans = pages.items;
  const [selected, setSelected] = React.useState<string | null>(null);
  React.useEffect(() => setSelected(null), [traceId]);
  const bounds = summary && summary.trace_id === traceId ? summary : undefined;
  const extent = React.useMemo(
    () => traceWindow(spans, bounds && { start: bounds.start_time, end: bounds.end_time }),
    [spans, bounds]
  );
  // The root (or the earliest span) until the user picks one.
  const current =
    spans.find(s => s.span_id === selected) ?? spans.find(s => s.parent_span_id === null) ?? spans[0] ?? null;

  const sentinel = React.useRef<HTMLDivElement>(null);
  const { hasMore, loading, loadMore } = pages;
  React.useEffect(() => {
    const node = sentinel.current;
    if (!node || !hasMore || loading || typeof IntersectionObserver === 'undefined') {
      return;
    }
    const observer = new IntersectionObserver(entries => {
      if (entries.some(e => e.isIntersecting)) {
        loadMore();
      }
    });
    observer.observe(node);
    return () => observer.disconnect();
  }, [hasMore, loading, loadMore, spans.length]);

  return (
    <div className="agiflow-trace-view" data-testid="agiflow-trace-view" data-trace-id={traceId}>
      <div className="agiflow-trace-head">
        <button type="button" className="agiflow-link-button" data-testid="agiflow-trace-close" onClick={onClose}>
          ✕ Close
        </button>
        <span className="agiflow-trace-title">
          {bounds?.name ?? spans.find(s => s.parent_span_id === null)?.name ?? ''}
        </span>
        {bounds && <StatusChip status={bounds.status} />}
        <span className="agiflow-job-id agiflow-muted" title="trace id">
          {traceId}
        </span>
        {bounds && (
          <span className="agiflow-run-metrics">
            <Figure name="started" value={formatDateTime(bounds.start_time)} />
            <Figure name="duration" value={formatDuration(bounds.duration_ms)} />
            <Figure name="spans" value={String(bounds.span_count)} />
            <Figure name="tokens" value={formatTokens(bounds.tokens_in, bounds.tokens_out)} />
            <Figure
              name="cost"
              value={formatTotalCost(bounds.cost_usd, bounds.unpriced_count)}
              title={totalCostTitle(bounds.unpriced_count)}
            />
          </span>
        )}
      </div>
      {pages.error !== undefined && (
        <ErrorNotice
          message={pages.error}
          onRetry={pages.first === undefined ? () => setRetries(r => r + 1) : loadMore}
        />
      )}
      {pages.first === undefined ? (
        pages.error === undefined && <div className="agiflow-status">Loading spans…</div>
      ) : (
        <div className="agiflow-trace-body">
          <div className="agiflow-span-tree-pane">
            <SpanTree spans={spans} extent={extent} selected={current?.span_id ?? null} onSelect={setSelected} />
            {hasMore && (
              <div ref={sentinel} className="agiflow-more-spans">
                <button
                  type="button"
                  className="agiflow-link-button agiflow-more"
                  data-testid="agiflow-spans-more"
                  disabled={loading}
                  onClick={loadMore}
                >
                  {loading ? 'Loading spans…' : `Load more spans (${spans.length} loaded)`}
                </button>
              </div>
            )}
            <TraceScores
              api={api}
              project={project}
              traceId={traceId}
              spans={spans}
              selected={current}
              refresh={refresh}
            />
          </div>
          <div className="agiflow-span-detail-pane">
            {current && (
              <SpanDetail span={current} actions={<SpanToDataset api={api} project={project} span={current} />} />
            )}
          </div>
        </div>
      )}
    </div>
  );
}

function Figure({ name, value, title }: { name: string; value: string; title?: string }): JSX.Element {
  return (
    <span className="agiflow-metric" title={title}>
      <span className="agiflow-metric-name">{name}</span>
      <span className="agiflow-metric-value">{value}</span>
    </span>
  );
}
