import * as React from 'react';

import type { AgiflowApi } from './api';
import { ErrorNotice } from './ErrorNotice';
import type { DatasetVersion, TraceSpan } from './types';
import { useAction } from './useAction';
import { useRequest } from './useRequest';

export interface SpanToDatasetProps {
  api: AgiflowApi;
  project: string;
  span: TraceSpan;
}

/**
 * "Add to dataset": the span becomes an item (its input, its output as the
 * expected answer) of a new version of the dataset named; a name that is not
 * a dataset yet creates one.
 */
export function SpanToDataset({ api, project, span }: SpanToDatasetProps): JSX.Element {
  const datasets = useRequest(() => api.listDatasets(project), [api, project]);
  const [name, setName] = React.useState('');
  const [done, setDone] = React.useState<DatasetVersion | null>(null);
  const { busy, error, act } = useAction(span.span_id);
  React.useEffect(() => setDone(null), [span.span_id]);
  const known = datasets.data?.items ?? [];
  const trimmed = name.trim();
  const exists = known.some(d => d.name === trimmed);
  const listId = `agiflow-datasets-${project}`;

  const submit = (event: React.FormEvent): void => {
    event.preventDefault();
    void act('add', async () => {
      if (!exists) {
        await api.createDataset(project, trimmed, 'Spans picked in AGIFlow Traces');
      }
      setDone(await api.addSpansToDataset(project, trimmed, [{ trace_id: span.trace_id, span_id: span.span_id }]));
      if (!exists) {
        datasets.reload();
      }
    });
  };

  return (
    <form className="agiflow-span-to-dataset" data-testid="agiflow-span-to-dataset" onSubmit={submit}>
      <input
        className="agiflow-search-input"
        data-testid="agiflow-dataset-name"
        list={listId}
        placeholder="dataset name"
        aria-label="Dataset"
        required
        value={name}
        onChange={event => {
          setName(event.target.value);
          setDone(null);
        }}
      />
      <datalist id={listId}>
        {known.map(d => (
          <option key={d.name} value={d.name} />
        ))}
      </datalist>
      <button
        type="submit"
        className="jp-mod-styled agiflow-dataset-add"
        data-testid="agiflow-dataset-add"
        disabled={busy !== null || trimmed === ''}
        title="The span's input becomes the item's input, its output the expected answer"
      >
        {busy ? 'Adding…' : exists || trimmed === '' ? 'Add span to dataset' : 'Create dataset and add span'}
      </button>
      {done && (
        <span className="agiflow-muted" data-testid="agiflow-dataset-added">
          Added: {done.name} v{done.version} ({done.item_count} item{done.item_count === 1 ? '' : 's'})
        </span>
      )}
      {error !== undefined && <ErrorNotice message={error} />}
    </form>
  );
}
