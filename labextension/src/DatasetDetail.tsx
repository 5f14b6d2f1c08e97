import { Notification } from '@jupyterlab/apputils';
import { Button, HTMLSelect } from '@jupyterlab/ui-components';
import * as React from 'react';

import { DatasetImport } from './DatasetImport';
import { DatasetItems } from './DatasetItems';
import type { DatasetsApi } from './datasetsApi';
import { ErrorNotice } from './ErrorNotice';
import { shortTime } from './manageDialogs';
import type { DatasetVersion, Page } from './types';
import { usePages } from './usePages';
import { useRequest } from './useRequest';

export interface DatasetDetailProps {
  api: DatasetsApi;
  project: string;
  name: string;
  editable: boolean;
  generation: number;
  /** A write made a new version: the list's counts change too. */
  onChanged: () => void;
}

/**
 * One dataset: its versions (newest first; any one can be shown), the items of
 * the chosen version, and for editors the writes, each of which makes a new
 * version that is then shown.
 */
export function DatasetDetail({
  api,
  project,
  name,
  editable,
  generation,
  onChanged
}: DatasetDetailProps): JSX.Element {
  const [writes, setWrites] = React.useState(0);
  const [version, setVersion] = React.useState<number | null>(null);
  const [written, setWritten] = React.useState<DatasetVersion | null>(null);
  const refresh = `${generation}:${writes}`;
  const dataset = useRequest(() => api.get(project, name), [api, project, name, refresh]);
  const versions = usePages<Page<'DatasetVersion'>, DatasetVersion>(
    cursor => api.versions(project, name, cursor),
    [api, project, name],
    refresh
  );
  const latest = dataset.data?.latest_version;
  const shown = version ?? latest;

  const onWritten = React.useCallback(
    (v: DatasetVersion, what: string) => {
      Notification.success(`${what}: version ${v.version} of ${v.name} (${v.item_count} items)`, { autoClose: 3000 });
      setWritten(v);
      setVersion(null); // follow the newest
      setWrites(w => w + 1);
      onChanged();
    },
    [onChanged]
  );

  if (dataset.error !== undefined) {
    return <ErrorNotice message={dataset.error} onRetry={dataset.reload} />;
  }
  if (dataset.data === undefined || shown === undefined) {
    return <div className="agiflow-status">Loading {name}…</div>;
  }
  const d = dataset.data;
  const isLatest = shown === d.latest_version;
  const versionOptions = versions.items.some(v => v.version === shown)
    ? versions.items
    : [{ version: shown, item_count: NaN, message: '', created_at: '' } as DatasetVersion, ...versions.items];

  return (
    <div className="agiflow-dataset-detail" data-testid="agiflow-dataset-detail" data-dataset={d.name}>
      <div className="agiflow-dataset-head">
        <h3>{d.name}</h3>
        <span
          className="agiflow-chip agiflow-manage-chip agiflow-manage-chip-version"
          data-testid="agiflow-dataset-latest"
          data-version={d.latest_version}
        >
          latest v{d.latest_version}
        </span>
        <span className="agiflow-muted">
          {d.item_count} {d.item_count === 1 ? 'item' : 'items'} · by {d.created_by} · updated {shortTime(d.updated_at)}
        </span>
        <a
          className="jp-Button jp-mod-minimal agiflow-dataset-export"
          data-testid="agiflow-dataset-export"
          href={api.exportUrl(project, d.name, shown)}
          download={`${d.name}-v${shown}.jsonl`}
        >
          Export v{shown} (JSONL)
        </a>
      </div>
      {d.description && <p className="agiflow-muted">{d.description}</p>}
      {written !== null && (
        <p className="agiflow-dataset-written" data-testid="agiflow-dataset-written" role="status">
          New version <strong>v{written.version}</strong> written: {written.item_count}{' '}
          {written.item_count === 1 ? 'item' : 'items'}
          {written.message ? ` — ${written.message}` : ''}.
        </p>
      )}
      <div className="agiflow-manage-form">
        <label className="agiflow-field agiflow-field-fixed">
          <span>Version</span>
          <HTMLSelect
            data-testid="agiflow-dataset-version"
            value={shown}
            onChange={event => setVersion(Number(event.target.value))}
            options={versionOptions.map(v => ({
              value: v.version,
              label:
                `v${v.version}` +
                (v.version === d.latest_version ? ' (latest)' : '') +
                (Number.isNaN(v.item_count) ? '' : ` · ${v.item_count} items`) +
                (v.message ? ` · ${v.message}` : '') +
                (v.created_at ? ` · ${shortTime(v.created_at)}` : '')
            }))}
          />
        </label>
        {versions.hasMore && (
          <Button minimal small disabled={versions.loading} onClick={versions.loadMore}>
            Older versions…
          </Button>
        )}
        {!isLatest && <span className="agiflow-muted">An older version: read only. Writes go to the latest.</span>}
      </div>
      {versions.error !== undefined && <ErrorNotice message={versions.error} />}
      {editable && isLatest && (
        <DatasetImport api={api} project={project} name={d.name} onWritten={v => onWritten(v, 'Imported')} />
      )}
      <DatasetItems
        api={api}
        project={project}
        name={d.name}
        version={shown}
        editable={editable && isLatest}
        refresh={refresh}
        onWritten={onWritten}
      />
    </div>
  );
}
