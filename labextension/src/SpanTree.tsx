import * as React from 'react';

import { epochMs, formatDuration } from './traceFormat';
import type { TraceSpan } from './types';

export interface SpanRow {
  span: TraceSpan;
  depth: number;
  /** its parent is not among the spans loaded (yet, or ever) */
  orphan: boolean;
}

/**
 * The loaded spans depth first, children in start order (the API's order).
 * A span whose parent is not loaded is shown at the top level, marked.
 */
export function spanRows(spans: TraceSpan[]): SpanRow[] {
  const ids = new Set(spans.map(s => s.span_id));
  const children = new Map<string, TraceSpan[]>();
  const tops: TraceSpan[] = [];
  for (const span of spans) {
    const parent = span.parent_span_id;
    if (parent !== null && ids.has(parent) && parent !== span.span_id) {
      const list = children.get(parent) ?? [];
      list.push(span);
      children.set(parent, list);
    } else {
      tops.push(span);
    }
  }
  const rows: SpanRow[] = [];
  const seen = new Set<string>();
  // Iterative, so a very deep trace cannot overflow the stack.
  const stack: Array<{ span: TraceSpan; depth: number }> = tops
    .slice()
    .reverse()
    .map(span => ({ span, depth: 0 }));
  while (stack.length > 0) {
    const { span, depth } = stack.pop()!;
    if (seen.has(span.span_id)) {
      continue;
    }
    seen.add(span.span_id);
    rows.push({ span, depth, orphan: depth === 0 && span.parent_span_id !== null });
    const kids = children.get(span.span_id) ?? [];
    for (let i = kids.length - 1; i >= 0; i--) {
      stack.push({ span: kids[i], depth: depth + 1 });
    }
  }
  return rows;
}

/** The earliest start and latest end among `spans` (and `bounds`, e.g. the trace summary's), in ms. */
export function traceWindow(
  spans: TraceSpan[],
  bounds?: { start: string; end: string }
): { start: number; end: number } {
  let start = bounds ? epochMs(bounds.start) : Infinity;
  let end = bounds ? epochMs(bounds.end) : -Infinity;
  for (const span of spans) {
    start = Math.min(start, epochMs(span.start_time));
    end = Math.max(end, epochMs(span.end_time));
  }
  return Number.isFinite(start) && Number.isFinite(end) ? { start, end } : { start: 0, end: 0 };
}

export interface SpanTreeProps {
  spans: TraceSpan[];
  extent: { start: number; end: number };
  selected: string | null;
  onSelect: (spanId: string) => void;
}

const INDENT_PX = 14;

/** The spans as an indented tree, each with a bar placing it within the trace's duration. */
export function SpanTree({ spans, extent, selected, onSelect }: SpanTreeProps): JSX.Element {
  const rows = React.useMemo(() => spanRows(spans), [spans]);
  const total = Math.max(extent.end - extent.start, 0.001);
  return (
    <ul className="agiflow-span-tree" data-testid="agiflow-span-tree" role="tree">
      {rows.map(({ span, depth, orphan }) => {
        const left = Math.min(1, Math.max(0, (epochMs(span.start_time) - extent.start) / total));
        const width = Math.min(1 - left, Math.max(0, span.duration_ms / total));
        const isSelected = span.span_id === selected;
        return (
          <li key={span.span_id} role="treeitem" aria-selected={isSelected} aria-level={depth + 1}>
            <button
              type="button"
              className={'agiflow-span-row' + (isSelected ? ' agiflow-mod-selected' : '')}
              data-testid="agiflow-span-row"
              data-span-id={span.span_id}
              data-depth={depth}
              data-status={span.status}
              onClick={() => onSelect(span.span_id)}
            >
              <span className="agiflow-span-label" style={{ paddingLeft: depth * INDENT_PX }}>
                <span className={`agiflow-span-dot agiflow-span-dot-${span.status}`} aria-hidden="true" />
                <span className="agiflow-span-name">{span.name}</span>
                <span className="agiflow-span-type">{span.span_type}</span>
                {orphan && (
                  <span className="agiflow-muted" title="Its parent span is not loaded (or was never received)">
                    ↑?
                  </span>
                )}
              </span>
              <span className="agiflow-span-timeline" title={`${formatDuration(span.duration_ms)}`}>
                <span
                  className={`agiflow-span-bar agiflow-span-bar-${span.status}`}
                  style={{ left: `${left * 100}%`, width: `max(2px, ${width * 100}%)` }}
                />
              </span>
              <span className="agiflow-span-duration">{formatDuration(span.duration_ms)}</span>
            </button>
          </li>
        );
      })}
    </ul>
  );
}
