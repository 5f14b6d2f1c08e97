import { Notification } from '@jupyterlab/apputils';
import { Button, InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { DatasetDetail } from './DatasetDetail';
import { DatasetsApi } from './datasetsApi';
import { ErrorNotice } from './ErrorNotice';
import { ManageFrame } from './ManageFrame';
import { canEdit } from './manageRoles';
import type { Dataset, Page } from './types';
import { useAction } from './useAction';
import { usePages } from './usePages';

/** Datasets: list and search, create, and one dataset's versions and items (see DatasetDetail). */
export function DatasetsView({ api, datasets }: { api: AgiflowApi; datasets: DatasetsApi }): JSX.Element {
  return (
    <ManageFrame api={api} title="AGIFlow Datasets" className="agiflow-datasets" testId="agiflow-datasets">
      {({ project, role, generation }) => (
        <DatasetsBody key={project} api={datasets} project={project} editable={canEdit(role)} generation={generation} />
      )}
    </ManageFrame>
  );
}

function DatasetsBody(props: {
  api: DatasetsApi;
  project: string;
  editable: boolean;
  generation: number;
}): JSX.Element {
  const { api, project, editable, generation } = props;
  const [search, setSearch] = React.useState('');
  const [query, setQuery] = React.useState('');
  const [selected, setSelected] = React.useState<string | null>(null);
  const [changes, setChanges] = React.useState(0);

  // Ask the server once typing pauses, not on every key.
  React.useEffect(() => {
    const timer = window.setTimeout(() => setQuery(search.trim()), 250);
    return () => window.clearTimeout(timer);
  }, [search]);

  const pages = usePages<Page<'Dataset'>, Dataset>(
    cursor => api.list(project, query, cursor),
    [api, project, query],
    `${generation}:${changes}`
  );
  const changed = React.useCallback(() => setChanges(c => c + 1), []);

  return (
    <div className="agiflow-body">
      <div className="agiflow-list-pane">
        <div className="agiflow-manage-form agiflow-dataset-search">
          <label className="agiflow-field">
            <span>Search</span>
            <InputGroup
              type="search"
              data-testid="agiflow-dataset-search"
              placeholder="Dataset name"
              value={search}
              onChange={event => setSearch(event.target.value)}
            />
          </label>
        </div>
        {editable && (
          <DatasetCreateForm
            api={api}
            project={project}
            onCreated={name => {
              setSelected(name);
              changed();
            }}
          />
        )}
        {pages.error !== undefined && <ErrorNotice message={pages.error} />}
        {pages.items.length === 0 ? (
          <div className="agiflow-status">
            {pages.loading ? 'Loading datasets…' : query ? 'No dataset matches.' : 'No datasets in this project yet.'}
          </div>
        ) : (
          <ul className="agiflow-dataset-list" data-testid="agiflow-dataset-list">
            {pages.items.map(d => (
              <li key={d.name}>
                <button
                  type="button"
                  className={'agiflow-dataset-item' + (d.name === selected ? ' agiflow-mod-selected' : '')}
                  data-testid="agiflow-dataset-item"
                  data-dataset={d.name}
                  aria-current={d.name === selected ? 'true' : undefined}
                  onClick={() => setSelected(d.name)}
                >
                  <span className="agiflow-prompt-name">{d.name}</span>
                  <span className="agiflow-dataset-item-meta">
                    v{d.latest_version} · {d.item_count} {d.item_count === 1 ? 'item' : 'items'}
                    {d.description ? ` · ${d.description}` : ''}
                  </span>
                </button>
              </li>
            ))}
          </ul>
        )}
        {pages.hasMore && (
          <div className="agiflow-more">
            <Button minimal disabled={pages.loading} onClick={pages.loadMore}>
              {pages.loading ? 'Loading…' : 'Load more'}
            </Button>
          </div>
        )}
      </div>
      <div className="agiflow-detail-pane">
        {selected === null ? (
          <div className="agiflow-status">Select a dataset to see its versions and items.</div>
        ) : (
          <DatasetDetail
            key={selected}
            api={api}
            project={project}
            name={selected}
            editable={editable}
            generation={generation}
            onChanged={changed}
          />
        )}
      </div>
    </div>
  );
}

function DatasetCreateForm(props: {
  api: DatasetsApi;
  project: string;
  onCreated: (name: string) => void;
}): JSX.Element {
  const { api, project, onCreated } = props;
  const [name, setName] = React.useState('');
  const [description, setDescription] = React.useState('');
  const { busy, error, act } = useAction(project);
  return (
    <form
      className="agiflow-manage-form agiflow-dataset-create"
      data-testid="agiflow-dataset-create"
      onSubmit={event => {
        event.preventDefault();
        void act('create', async () => {
          const created = await api.create(project, { name: name.trim(), description: description.trim() });
          Notification.success(`Dataset ${created.name} created (empty, version 0)`, { autoClose: 3000 });
          setName('');
          setDescription('');
          onCreated(created.name);
        });
      }}
    >
      <label className="agiflow-field">
        <span>New dataset</span>
        <InputGroup
          data-testid="agiflow-dataset-name"
          placeholder="name"
          pattern="[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}"
          title="Letters, digits, '_', '.', '-'"
          required
          value={name}
          onChange={event => setName(event.target.value)}
        />
      </label>
      <label className="agiflow-field">
        <span>Description</span>
        <InputGroup
          placeholder="optional"
          value={description}
          maxLength={5000}
          onChange={event => setDescription(event.target.value)}
        />
      </label>
      <Button
        type="submit"
        className="jp-mod-accept"
        data-testid="agiflow-dataset-create-button"
        disabled={busy !== null || !name.trim()}
      >
        Create
      </Button>
      {error !== undefined && <ErrorNotice message={error} />}
    </form>
  );
}
