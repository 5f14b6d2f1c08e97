import { Notification } from '@jupyterlab/apputils';
import { Button } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { EditableSection, EditDeleteButtons, Editing } from './EditableSection';
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

function Connections(props: {
  api: ModelsApi;
  project: string;
  owner: boolean;
  tester: boolean;
  generation: number;
}): JSX.Element {
  const { api, project, owner, tester, generation } = props;
  const list = useRequest(() => api.list(project), [api, project, generation]);
  const [editing, setEditing] = React.useState<Editing<Connection>>(null);
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
    <EditableSection<Connection>
      title="Model connections"
      titleId="agiflow-models-connections-title"
      mayEdit={owner}
      whoMay="Only the project's owners add or change connections (they hold the provider keys)."
      newLabel="New connection"
      newTestId="agiflow-model-new"
      editing={editing}
      setEditing={setEditing}
      nameOf={c => c.name}
      form={(connection, done) => (
        <ModelConnectionForm api={api} project={project} connection={connection} onDone={done} />
      )}
      onSaved={list.reload}
    >
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
                        <EditDeleteButtons
                          name={c.name}
                          disabled={busy !== null}
                          onEdit={() => setEditing({ mode: 'edit', item: c })}
                          onDelete={() => void remove(c)}
                          testIdPrefix="agiflow-model"
                        />
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
    </EditableSection>
  );
}
