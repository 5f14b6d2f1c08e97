import * as React from 'react';

import type { AgiflowApi } from './api';
import { ErrorNotice } from './ErrorNotice';
import { formatDateTime } from './traceFormat';
import type { Page, Score, TraceSpan } from './types';
import { useAction } from './useAction';
import { usePages } from './usePages';

export interface TraceScoresProps {
  api: AgiflowApi;
  project: string;
  traceId: string;
  /** the loaded spans, to name the span a score is on */
  spans: TraceSpan[];
  /** the span shown beside the tree: the form can score it instead of the trace */
  selected: TraceSpan | null;
  refresh: number;
}

/** The trace's scores (and its spans'), newest first, and a form to add one. */
export function TraceScores({ api, project, traceId, spans, selected, refresh }: TraceScoresProps): JSX.Element {
  const [added, setAdded] = React.useState(0);
  const pages = usePages<Page<'Score'>, Score>(
    cursor => api.listScores(project, traceId, { cursor }),
    [api, project, traceId],
    `${refresh}-${added}`
  );
  const names = React.useMemo(() => new Map(spans.map(s => [s.span_id, s.name])), [spans]);
  return (
    <section className="agiflow-trace-scores" data-testid="agiflow-trace-scores">
      <h4>
        Scores <span className="agiflow-muted">({pages.first === undefined ? '…' : pages.items.length})</span>
      </h4>
      {pages.error !== undefined && <ErrorNotice message={pages.error} />}
      {pages.items.length > 0 && (
        <table className="agiflow-table agiflow-score-table" data-testid="agiflow-score-list">
          <thead>
            <tr>
              <th>Name</th>
              <th>Value</th>
              <th>On</th>
              <th>Source</th>
              <th>Comment</th>
              <th>By</th>
            </tr>
          </thead>
          <tbody>
            {pages.items.map(score => (
              <tr key={score.id} data-testid="agiflow-score-row" data-score-name={score.name}>
                <td>{score.name}</td>
                <td className="agiflow-score-value" title={score.data_type}>
                  {String(score.value)}
                </td>
                <td className="agiflow-muted">
                  {score.span_id === null ? 'trace' : (names.get(score.span_id) ?? score.span_id)}
                </td>
                <td>
                  <span className="agiflow-chip agiflow-chip-type">{score.source}</span>
                </td>
                <td className="agiflow-score-comment">{score.comment ?? ''}</td>
                <td className="agiflow-muted agiflow-nowrap" title={formatDateTime(score.created_at)}>
                  {score.author}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pages.hasMore && (
        <button type="button" className="agiflow-link-button agiflow-more" onClick={pages.loadMore}>
          Load more scores
        </button>
      )}
      <ScoreForm
        api={api}
        project={project}
        traceId={traceId}
        selected={selected}
        onAdded={() => setAdded(n => n + 1)}
      />
    </section>
  );
}

interface ScoreFormProps {
  api: AgiflowApi;
  project: string;
  traceId: string;
  selected: TraceSpan | null;
  onAdded: () => void;
}

function ScoreForm({ api, project, traceId, selected, onAdded }: ScoreFormProps): JSX.Element {
  const [name, setName] = React.useState('');
  const [value, setValue] = React.useState('');
  const [comment, setComment] = React.useState('');
  const [onSpan, setOnSpan] = React.useState(false);
  const { busy, error, act } = useAction(traceId);
  const submit = (event: React.FormEvent): void => {
    event.preventDefault();
    void act('score', async () => {
      await api.createScore(project, {
        trace_id: traceId,
        span_id: onSpan && selected ? selected.span_id : null,
        name: name.trim(),
        value: scoreValue(value),
        comment: comment.trim() || null
      });
      setValue('');
      setComment('');
      onAdded();
    });
  };
  return (
    <form className="agiflow-score-form" data-testid="agiflow-score-form" onSubmit={submit}>
      <input
        className="agiflow-search-input"
        data-testid="agiflow-score-name"
        placeholder="name, e.g. helpfulness"
        aria-label="Score name"
        required
        value={name}
        onChange={event => setName(event.target.value)}
      />
      <input
        className="agiflow-search-input agiflow-score-value-input"
        data-testid="agiflow-score-value"
        placeholder="0.8, true or a label"
        aria-label="Score value"
        title="A number is a numeric score, true/false a boolean one, any other text a category"
        required
        value={value}
        onChange={event => setValue(event.target.value)}
      />
      <input
        className="agiflow-search-input"
        data-testid="agiflow-score-comment"
        placeholder="comment (optional)"
        aria-label="Comment"
        value={comment}
        onChange={event => setComment(event.target.value)}
      />
      <label className="agiflow-toggle" title={selected ? `Score the span "${selected.name}"` : undefined}>
        <input
          type="checkbox"
          data-testid="agiflow-score-on-span"
          checked={onSpan}
          disabled={!selected}
          onChange={event => setOnSpan(event.target.checked)}
        />
        <span>on the selected span</span>
      </label>
      <button
        type="submit"
        className="jp-mod-styled jp-mod-accept agiflow-score-add"
        data-testid="agiflow-score-add"
        disabled={busy !== null || !name.trim() || !value.trim()}
      >
        {busy ? 'Adding…' : 'Add score'}
      </button>
      {error !== undefined && <ErrorNotice message={error} />}
    </form>
  );
}

/** What the user typed, as the JSON type that makes the score numeric, boolean or categorical. */
export function scoreValue(text: string): number | boolean | string {
  const t = text.trim();
  if (t === 'true' || t === 'false') {
    return t === 'true';
  }
  const n = Number(t);
  return t !== '' && Number.isFinite(n) ? n : t;
}
