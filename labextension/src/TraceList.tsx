import * as React from 'react';

import { StatusChip } from './SpanDetail';
import { formatCount, formatDateTime, formatDuration, formatTotalCost, totalCostTitle } from './traceFormat';
import type { GroupSummary, TraceSummary } from './types';

export interface TraceListProps {
  traces: TraceSummary[];
  selected: string | null;
  onOpen: (trace: TraceSummary) => void;
}

/** The trace list as a table, one row per trace; a click opens it. */
export function TraceList({ traces, selected, onOpen }: TraceListProps): JSX.Element {
  return (
    <table className="agiflow-table agiflow-trace-table" data-testid="agiflow-trace-list">
      <thead>
        <tr>
          <th>Time</th>
          <th>Name</th>
          <th className="agiflow-num">Duration</th>
          <th>Status</th>
          <th className="agiflow-num">Spans</th>
          <th className="agiflow-num">Tokens in/out</th>
          <th className="agiflow-num">Cost</th>
          <th>Models</th>
          <th className="agiflow-col-preview">Input</th>
        </tr>
      </thead>
      <tbody>
        {traces.map(trace => (
          <tr
            key={trace.trace_id}
            className={'agiflow-trace-row' + (trace.trace_id === selected ? ' agiflow-mod-selected' : '')}
            data-testid="agiflow-trace-row"
            data-trace-id={trace.trace_id}
            data-status={trace.status}
            aria-selected={trace.trace_id === selected}
            onClick={() => onOpen(trace)}
          >
            <td className="agiflow-nowrap" title={trace.start_time}>
              {formatDateTime(trace.start_time)}
            </td>
            <td>
              <button
                type="button"
                className="agiflow-row-open"
                data-testid="agiflow-trace-open"
                onClick={event => {
                  event.stopPropagation();
                  onOpen(trace);
                }}
              >
                {trace.name}
              </button>
              {!trace.has_root && (
                <span className="agiflow-muted" title="The root span has not arrived (yet)">
                  {' '}
                  (no root)
                </span>
              )}
            </td>
            <td className="agiflow-num">{formatDuration(trace.duration_ms)}</td>
            <td>
              <StatusChip status={trace.status} />
            </td>
            <td className="agiflow-num agiflow-trace-spans">
              {trace.span_count}
              {trace.error_count > 0 && (
                <span className="agiflow-item-error" title="spans that failed">
                  {' '}
                  ({trace.error_count}✕)
                </span>
              )}
            </td>
            <td className="agiflow-num agiflow-nowrap">
              {formatCount(trace.tokens_in)} / {formatCount(trace.tokens_out)}
            </td>
            <td className="agiflow-num agiflow-trace-cost" title={totalCostTitle(trace.unpriced_count)}>
              {formatTotalCost(trace.cost_usd, trace.unpriced_count)}
            </td>
            <td className="agiflow-trace-models">{trace.models.join(', ')}</td>
            <td className="agiflow-col-preview">
              <div className="agiflow-preview" title={trace.input_preview ?? undefined}>
                {trace.input_preview ?? ''}
              </div>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export interface GroupListProps {
  kind: 'session' | 'user';
  groups: GroupSummary[];
  onOpen: (id: string) => void;
}

/** Sessions or users with their totals; a click lists their traces. */
export function GroupList({ kind, groups, onOpen }: GroupListProps): JSX.Element {
  return (
    <table className="agiflow-table agiflow-group-table" data-testid={`agiflow-${kind}-list`}>
      <thead>
        <tr>
          <th>{kind === 'session' ? 'Session' : 'User'}</th>
          <th className="agiflow-num">Traces</th>
          <th className="agiflow-num">With errors</th>
          <th className="agiflow-num">Tokens in/out</th>
          <th className="agiflow-num">Cost</th>
          <th>First seen</th>
          <th>Last seen</th>
        </tr>
      </thead>
      <tbody>
        {groups.map(group => (
          <tr key={group.id} className="agiflow-trace-row" data-group-id={group.id} onClick={() => onOpen(group.id)}>
            <td>
              <button
                type="button"
                className="agiflow-row-open"
                title={`Show the traces of this ${kind}`}
                onClick={event => {
                  event.stopPropagation();
                  onOpen(group.id);
                }}
              >
                {group.id}
              </button>
            </td>
            <td className="agiflow-num">{group.trace_count}</td>
            <td className="agiflow-num">{group.error_count}</td>
            <td className="agiflow-num agiflow-nowrap">
              {formatCount(group.tokens_in)} / {formatCount(group.tokens_out)}
            </td>
            <td className="agiflow-num" title={totalCostTitle(group.unpriced_count)}>
              {formatTotalCost(group.cost_usd, group.unpriced_count)}
            </td>
            <td className="agiflow-nowrap">{formatDateTime(group.first_seen)}</td>
            <td className="agiflow-nowrap">{formatDateTime(group.last_seen)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
