import { Clipboard, Notification } from '@jupyterlab/apputils';
import { Button, HTMLSelect, InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import { ErrorNotice } from './ErrorNotice';
import { confirmAction, shortTime } from './manageDialogs';
import { Role, ROLES } from './manageRoles';
import type { ApiKey, CreatedKey, SettingsApi } from './settingsApi';
import { useAction } from './useAction';
import { useRequest } from './useRequest';

export interface SettingsKeysProps {
  api: SettingsApi;
  project: string;
  owner: boolean;
  /** The caller may list keys (see `mayRead`); if not, the section says who may instead of asking. */
  readable: boolean;
  generation: number;
  /** Something was written: the audit log has news. */
  onChanged: () => void;
}

/**
 * The project's API keys: create one with a role (its secret shown once, with
 * a Copy button), the list without secrets, revoke after a confirmation. Keys
 * are owners' business: anyone else is told so, and the list is not asked for.
 */
export function SettingsKeys(props: SettingsKeysProps): JSX.Element {
  const { api, project, owner, readable, generation, onChanged } = props;
  const keys = useRequest(readable ? () => api.keys(project) : null, [api, project, readable, generation]);
  const [created, setCreated] = React.useState<CreatedKey | null>(null);
  const { busy, error, act } = useAction(project);
  React.useEffect(() => setCreated(null), [project]);

  const revoke = (key: ApiKey): Promise<void> =>
    act(`revoke:${key.id}`, async () => {
      const sure = await confirmAction(
        'Revoke API key',
        `Revoke "${key.name}" (${key.prefix}…)? Every program using it loses access at once. This cannot be undone.`,
        'Revoke'
      );
      if (!sure) {
        return;
      }
      await api.revokeKey(project, key.id);
      Notification.success(`API key "${key.name}" revoked`, { autoClose: 3000 });
      keys.reload();
      onChanged();
    });

  return (
    <section className="agiflow-manage-section agiflow-settings-keys" aria-labelledby="agiflow-settings-keys-title">
      <h3 id="agiflow-settings-keys-title">API keys</h3>
      {owner && (
        <KeyCreateForm
          onCreate={(name, role, done) =>
            act('create', async () => {
              const key = await api.createKey(project, name, role);
              done();
              setCreated(key);
              keys.reload();
              onChanged();
            })
          }
          busy={busy === 'create'}
        />
      )}
      {created !== null && <CreatedSecret created={created} onClose={() => setCreated(null)} />}
      {error !== undefined && <ErrorNotice message={error} />}
      {!readable ? (
        <p className="agiflow-muted" data-testid="agiflow-keys-owners-only">
          Only the project's owners see and manage its API keys.
        </p>
      ) : keys.error !== undefined ? (
        <ErrorNotice message={keys.error} onRetry={keys.reload} />
      ) : keys.data === undefined ? (
        <div className="agiflow-status">Loading keys…</div>
      ) : keys.data.items.length === 0 ? (
        <div className="agiflow-status">No API keys in this project.</div>
      ) : (
        <table className="agiflow-table agiflow-manage-table" data-testid="agiflow-key-list">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Key</th>
              <th scope="col">Role</th>
              <th scope="col">Created</th>
              <th scope="col">Last used</th>
              <th scope="col">State</th>
              {owner && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {keys.data.items.map(key => (
              <tr key={key.id} className="agiflow-key-row" data-key-id={key.id} data-testid="agiflow-key-row">
                <td>{key.name}</td>
                <td>
                  <code>{key.prefix}…</code>
                </td>
                <td>{key.role}</td>
                <td title={key.created_at}>
                  {shortTime(key.created_at)} <span className="agiflow-muted">by {key.created_by}</span>
                </td>
                <td title={key.last_used_at ?? undefined}>{shortTime(key.last_used_at) || '—'}</td>
                <td>
                  {key.revoked_at ? (
                    <span
                      className="agiflow-chip agiflow-manage-chip agiflow-manage-chip-revoked"
                      data-testid="agiflow-key-revoked"
                      title={key.revoked_at}
                    >
                      revoked {shortTime(key.revoked_at)}
                    </span>
                  ) : (
                    <span className="agiflow-chip agiflow-manage-chip agiflow-manage-chip-active">active</span>
                  )}
                </td>
                {owner && (
                  <td>
                    {!key.revoked_at && (
                      <Button
                        small
                        minimal
                        className="agiflow-manage-danger"
                        data-testid="agiflow-key-revoke"
                        aria-label={`Revoke key ${key.name}`}
                        disabled={busy !== null}
                        onClick={() => void revoke(key)}
                      >
                        Revoke
                      </Button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function KeyCreateForm(props: {
  /** `done` clears the form: called once the key exists. */
  onCreate: (name: string, role: Role, done: () => void) => Promise<void>;
  busy: boolean;
}): JSX.Element {
  const [name, setName] = React.useState('');
  const [role, setRole] = React.useState<Role>('viewer');
  return (
    <form
      className="agiflow-manage-form"
      data-testid="agiflow-key-create"
      onSubmit={event => {
        event.preventDefault();
        void props.onCreate(name.trim(), role, () => setName(''));
      }}
    >
      <label className="agiflow-field">
        <span>Name</span>
        <InputGroup
          data-testid="agiflow-key-name"
          placeholder="e.g. CI pipeline"
          value={name}
          required
          maxLength={200}
          onChange={event => setName(event.target.value)}
        />
      </label>
      <label className="agiflow-field agiflow-field-fixed">
        <span>Role</span>
        <HTMLSelect
          data-testid="agiflow-key-role"
          value={role}
          options={ROLES}
          onChange={event => setRole(event.target.value as Role)}
        />
      </label>
      <Button type="submit" className="jp-mod-accept" disabled={props.busy || !name.trim()}>
        {props.busy ? 'Creating…' : 'Create key'}
      </Button>
    </form>
  );
}

/** The secret of a key just created: shown here once, never again. */
function CreatedSecret({ created, onClose }: { created: CreatedKey; onClose: () => void }): JSX.Element {
  return (
    <div className="agiflow-manage-secret" data-testid="agiflow-key-secret" role="status">
      <p>
        Key <strong>{created.name}</strong> ({created.role}) created. Copy it now: it is shown only once and cannot be
        read again.
      </p>
      <div className="agiflow-manage-secret-row">
        <code className="agiflow-manage-secret-value" data-testid="agiflow-key-secret-value">
          {created.secret}
        </code>
        <Button
          className="jp-mod-accept"
          data-testid="agiflow-key-copy"
          onClick={() => {
            Clipboard.copyToSystem(created.secret);
            Notification.info('API key copied to the clipboard', { autoClose: 2000 });
          }}
        >
          Copy
        </Button>
        <Button minimal data-testid="agiflow-key-secret-close" onClick={onClose}>
          Done
        </Button>
      </div>
    </div>
  );
}
