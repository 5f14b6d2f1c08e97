import * as React from 'react';

import { JsonView, PayloadView } from './JsonView';
import { formatDateTime, formatDuration, formatSpanCost, formatTokens } from './traceFormat';
import type { TraceSpan } from './types';

/**
 * One span: what it was asked and answered, its model and cost, and everything
 * it carried. `actions` (e.g. "add to dataset") show under its name.
 */
export function SpanDetail({ span, actions }: { span: TraceSpan; actions?: React.ReactNode }): JSX.Element {
  return (
    <div className="agiflow-span-detail" data-testid="agiflow-span-detail" data-span-id={span.span_id}>
      <div className="agiflow-detail-header">
        <h3 className="agiflow-span-detail-title">{span.name}</h3>
        <StatusChip status={span.status} />
        <span className="agiflow-chip agiflow-chip-type">{span.span_type}</span>
      </div>
      {actions}
      {span.status_message && (
        <div className="agiflow-job-error agiflow-span-status-message" data-testid="agiflow-span-status-message">
          {span.status_message}
        </div>
      )}
      <dl className="agiflow-meta agiflow-span-meta">
        <dt>Model</dt>
        <dd data-testid="agiflow-span-model">
          {span.model ?? '—'}
          {span.provider && <span className="agiflow-muted"> · {span.provider}</span>}
        </dd>
        <dt>Tokens in/out</dt>
        <dd data-testid="agiflow-span-tokens">{formatTokens(span.tokens_in, span.tokens_out)}</dd>
        <dt>Cost</dt>
        <dd
          data-testid="agiflow-span-cost"
          title={span.cost_usd === null && span.model ? 'No price for this model, or no token counts' : undefined}
        >
          {formatSpanCost(span.cost_usd, span.model)}
        </dd>
        <dt>Duration</dt>
        <dd>{formatDuration(span.duration_ms)}</dd>
        <dt>Started</dt>
        <dd title={span.start_time}>{formatDateTime(span.start_time)}</dd>
        <dt>Kind</dt>
        <dd>{span.kind}</dd>
        {span.service_name && (
          <>
            <dt>Service</dt>
            <dd>{span.service_name}</dd>
          </>
        )}
        {span.prompt_name && (
          <>
            <dt>Prompt</dt>
            <dd>
              {span.prompt_name}
              {span.prompt_version !== null && ` v${span.prompt_version}`}
            </dd>
          </>
        )}
        {(span.session_id || span.user_id) && (
          <>
            <dt>Session · user</dt>
            <dd>
              {span.session_id ?? '—'} · {span.user_id ?? '—'}
            </dd>
          </>
        )}
        {span.tags.length > 0 && (
          <>
            <dt>Tags</dt>
            <dd>{span.tags.join(', ')}</dd>
          </>
        )}
        <dt>Span id</dt>
        <dd className="agiflow-job-id">{span.span_id}</dd>
      </dl>
      <h4>Input</h4>
      <PayloadView text={span.input} testId="agiflow-span-input" />
      <h4>Output</h4>
      <PayloadView text={span.output} testId="agiflow-span-output" />
      <Section title="Attributes" count={Object.keys(span.attributes).length} open>
        <JsonView value={span.attributes} />
      </Section>
      <Section title="Events" count={span.events.length} open={span.events.length > 0}>
        {span.events.length === 0 ? (
          <div className="agiflow-muted">none</div>
        ) : (
          <ul className="agiflow-span-events">
            {span.events.map((event, i) => (
              <li key={i}>
                <span className="agiflow-span-event-name">{event.name}</span>{' '}
                <span className="agiflow-muted" title={event.time}>
                  {formatDateTime(event.time)}
                </span>
                {Object.keys(event.attributes).length > 0 && <JsonView value={event.attributes} />}
              </li>
            ))}
          </ul>
        )}
      </Section>
      <Section title="Resource attributes" count={Object.keys(span.resource_attributes).length} open={false}>
        <JsonView value={span.resource_attributes} />
      </Section>
    </div>
  );
}

function Section(props: { title: string; count: number; open: boolean; children: React.ReactNode }): JSX.Element {
  return (
    <details className="agiflow-span-section" open={props.open}>
      <summary>
        <h4>
          {props.title} <span className="agiflow-muted">({props.count})</span>
        </h4>
      </summary>
      {props.children}
    </details>
  );
}

/** ok / error (and unset) as a chip that reads in the light and the dark theme. */
export function StatusChip({ status }: { status: string }): JSX.Element {
  return (
    <span className={`agiflow-chip agiflow-status-chip agiflow-status-${status}`} data-status={status}>
      {status}
    </span>
  );
}
