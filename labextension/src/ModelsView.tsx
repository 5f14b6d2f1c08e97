import { Notification } from '@jupyterlab/apputils';
import { Button } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { ErrorNotice } from './ErrorNotice';
import { ManageFrame } from './ManageFrame';
import { confirmAction } from './manageDialogs';
import { canEdit, isOwner } from './manageRoles';
import { ModelConnectionForm } from './ModelConnectionForm';
import { ModelPrices } from './ModelPrices';
import { ModelTest } from './ModelTest';
import { Connection, ModelsApi } from './modelsApi';
import { useAction } from './useAction';
import { useRequest } from './useRequest';

/** Model connections (create, edit, delete, test) and the project's price overrides. */
export function ModelsView({ api }: { api: AgiflowApi }): JSX.Element {
  const models = React.useMemo(() => new ModelsApi(api), [api]);
  return (
    <ManageFrame api={api} title="AGIFlow Models" className="agiflow-models" testId="agiflow-models">
      {({ project, role, generation }) => (
        <div className="agiflow-manage-body" key={project}>
          <Connections
            api={models}
            project={project}
            owner={isOwner(role)}
            tester={canEdit(role)}
            generation={generation}
          />
          <ModelPrices api={models} project={project} owner={isOwner(role)} generation={generation} />
        </div>
      )}
    </ManageFrame>
  );
}

type Editing = { mode: 'create' } | { mode: 'edit'; connection: Connection } | null;

function Connections(props: {
  api: ModelsApi;
  project: string;
  owner: boolean;
  tester: boolean;
  generation: number;
}): JSX.Element {
  const { api, project, owner, tester, generation } = props;
  const list = useRequest(() => api.list(project), [api, project, generation]);
  const [editing, setEditing] = React.useState<Editing>(null);
  const [testing, setTesting] = React.useState<string | null>(null);
  const { busy, error, act } = useAction(project);

  const remove = (c: Connection): Promise<void> =>
    act(`delete:${c.name}`, async () => {
      const sure = await confirmAction(
        'Delete model connection',
        `Delete the connection "${c.name}" and its stored key? Runs that name it will fail.`,
        'Delete'
      );
      if (!sure) {
        return;
      }
      await api.remove(project, c.name);
      Notification.success(`Connection ${c.name} deleted`, { autoClose: 3000 });
      if (testing === c.name) {
        setTesting(null);
      }
      list.reload();
    });

  return (
    <section className="agiflow-manage-section" aria-labelledby="agiflow-models-connections-title">
      <h3 id="agiflow-models-connections-title">Model connections</h3>
      {!owner && (
        <p className="agiflow-muted">
          Only the project's owners add or change connections (they hold the provider keys).
        </p>
      )}
      {owner && editing === null && (
        <Button
          className="jp-mod-accept"
          data-testid="agiflow-model-new"
          onClick={() => setEditing({ mode: 'create' })}
        >
          New connection
        </Button>
      )}
      {editing !== null && (
        <ModelConnectionForm
          key={editing.mode === 'edit' ? editing.connection.name : ':new'}
          api={api}
          project={project}
          connection={editing.mode === 'edit' ? editing.connection : null}
          onDone={saved => {
            setEditing(null);
            if (saved) {
              list.reload();
            }
          }}
        />
      )}
      {error !== undefined && <ErrorNotice message={error} />}
      {list.error !== undefined ? (
        <ErrorNotice message={list.error} onRetry={list.reload} />
      ) : list.data === undefined ? (
        <div className="agiflow-status">Loading connections…</div>
      ) : (
        <table className="agiflow-table agiflow-manage-table" data-testid="agiflow-model-list">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Kind</th>
              <th scope="col">Endpoint</th>
              <th scope="col">Default model</th>
              <th scope="col">API key</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map(c => (
              <React.Fragment key={c.name}>
                <tr data-testid="agiflow-model-row" data-connection={c.name}>
                  <td>
                    {c.name}
                    {c.description && <div className="agiflow-muted">{c.description}</div>}
                  </td>
                  <td>
                    {c.builtin ? <span className="agiflow-chip agiflow-manage-chip">built-in {c.kind}</span> : c.kind}
                  </td>
                  <td>
                    <code>{c.base_url ?? (c.builtin ? '—' : "vendor's default")}</code>
                    {c.options.api_version && <div className="agiflow-muted">API {c.options.api_version}</div>}
                  </td>
                  <td>{c.default_model ?? '—'}</td>
                  <td>
                    {c.has_api_key ? 'stored' : '—'}
                    {c.options.header_names.length > 0 && (
                      <div className="agiflow-muted">headers: {c.options.header_names.join(', ')}</div>
                    )}
                  </td>
                  <td>
                    <span className="agiflow-manage-actions">
                      {tester && (
                        <Button
                          small
                          minimal
                          data-testid="agiflow-model-test-open"
                          aria-expanded={testing === c.name}
                          aria-label={`Test ${c.name}`}
                          onClick={() => setTesting(testing === c.name ? null : c.name)}
                        >
                          Test
                        </Button>
                      )}
                      {owner && !c.builtin && (
                        <>
                          <Button
                            small
                            minimal
                            data-testid="agiflow-model-edit"
                            aria-label={`Edit ${c.name}`}
                            disabled={busy !== null}
                            onClick={() => setEditing({ mode: 'edit', connection: c })}
                          >
                            Edit
                          </Button>
                          <Button
                            small
                            minimal
                            className="agiflow-manage-danger"
                            aria-label={`Delete ${c.name}`}
                            disabled={busy !== null}
                            onClick={() => void remove(c)}
                          >
                            Delete
                          </Button>
                        </>
                      )}
                    </span>
                  </td>
                </tr>
                {testing === c.name && (
                  <tr>
                    <td colSpan={6}>
                      <ModelTest api={api} project={project} connection={c} />
                    </td>
                  </tr>
                )}
              </React.Fragment>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
