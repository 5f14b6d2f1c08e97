import { Notification } from '@jupyterlab/apputils';
import { Button, HTMLSelect, InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import { ErrorNotice } from './ErrorNotice';
import {
  Connection,
  ConnectionKind,
  ConnectionOptions,
  ConnectionUpdate,
  CONNECTION_KINDS,
  ModelsApi
} from './modelsApi';
import { useAction } from './useAction';

export interface ModelConnectionFormProps {
  api: ModelsApi;
  project: string;
  /** null: a new connection */
  connection: Connection | null;
  onDone: (saved: boolean) => void;
}

/**
 * Create or edit a connection. The API key is write-only: never shown back;
 * left empty on an edit, the stored key stays.
 */
export function ModelConnectionForm({ api, project, connection, onDone }: ModelConnectionFormProps): JSX.Element {
  const editing = connection !== null;
  const [name, setName] = React.useState(connection?.name ?? '');
  const [kind, setKind] = React.useState<ConnectionKind>(
    connection && connection.kind !== 'echo' ? connection.kind : 'openai'
  );
  const [baseUrl, setBaseUrl] = React.useState(connection?.base_url ?? '');
  const [model, setModel] = React.useState(connection?.default_model ?? '');
  const [description, setDescription] = React.useState(connection?.description ?? '');
  const [apiVersion, setApiVersion] = React.useState(connection?.options.api_version ?? '');
  const [apiKey, setApiKey] = React.useState('');
  const [clearKey, setClearKey] = React.useState(false);
  const { busy, error, act } = useAction(connection?.name ?? ':new');

  const submit = (event: React.FormEvent): void => {
    event.preventDefault();
    const options: ConnectionOptions | undefined =
      kind === 'azure_openai' ? { api_version: apiVersion.trim() || null } : undefined;
    void act('save', async () => {
      if (editing) {
        const body: ConnectionUpdate = {
          base_url: baseUrl.trim() || null,
          default_model: model.trim() || null,
          description: description.trim()
        };
        if (options) {
          body.options = options;
        }
        if (clearKey) {
          body.api_key = null;
        } else if (apiKey) {
          body.api_key = apiKey;
        }
        await api.update(project, connection.name, body);
        Notification.success(`Connection ${connection.name} saved`, { autoClose: 3000 });
      } else {
        await api.create(project, {
          name: name.trim(),
          kind,
          base_url: baseUrl.trim() || null,
          default_model: model.trim() || null,
          description: description.trim(),
          ...(options ? { options } : {}),
          api_key: apiKey || null
        });
        Notification.success(`Connection ${name.trim()} added`, { autoClose: 3000 });
      }
      setApiKey('');
      onDone(true);
    });
  };

  return (
    <form
      className="agiflow-manage-form agiflow-manage-form-stacked agiflow-model-form"
      data-testid="agiflow-model-form"
      onSubmit={submit}
    >
      <h4>{editing ? `Edit ${connection.name}` : 'New connection'}</h4>
      <label className="agiflow-field">
        <span>Name</span>
        <InputGroup
          data-testid="agiflow-model-name"
          value={name}
          required
          disabled={editing}
          pattern="[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"
          title="Letters, digits, '_', '.', '-'; runs refer to it by name"
          onChange={event => setName(event.target.value)}
        />
      </label>
      <label className="agiflow-field">
        <span>Kind</span>
        <HTMLSelect
          data-testid="agiflow-model-kind"
          value={kind}
          disabled={editing}
          options={CONNECTION_KINDS}
          onChange={event => setKind(event.target.value as ConnectionKind)}
        />
      </label>
      <label className="agiflow-field">
        <span>Base URL</span>
        <InputGroup
          data-testid="agiflow-model-base-url"
          placeholder="empty: the vendor's default endpoint"
          value={baseUrl}
          onChange={event => setBaseUrl(event.target.value)}
        />
      </label>
      <label className="agiflow-field">
        <span>Default model</span>
        <InputGroup
          data-testid="agiflow-model-default-model"
          placeholder={kind === 'azure_openai' ? 'the deployment name' : 'e.g. gpt-4o-mini'}
          value={model}
          onChange={event => setModel(event.target.value)}
        />
      </label>
      {kind === 'azure_openai' && (
        <label className="agiflow-field">
          <span>API version</span>
          <InputGroup placeholder="e.g. 2024-10-21" value={apiVersion} onChange={e => setApiVersion(e.target.value)} />
        </label>
      )}
      <label className="agiflow-field">
        <span>Description</span>
        <InputGroup value={description} maxLength={2000} onChange={event => setDescription(event.target.value)} />
      </label>
      <label className="agiflow-field">
        <span>API key</span>
        <InputGroup
          type="password"
          autoComplete="new-password"
          data-testid="agiflow-model-api-key"
          placeholder={
            editing
              ? connection.has_api_key
                ? 'leave empty to keep the current key'
                : 'no key stored; type one to add it'
              : 'stored encrypted, never shown again'
          }
          value={apiKey}
          disabled={clearKey}
          onChange={event => setApiKey(event.target.value)}
        />
      </label>
      {editing && connection.has_api_key && (
        <label className="agiflow-field agiflow-manage-check">
          <span />
          <span>
            <input type="checkbox" checked={clearKey} onChange={event => setClearKey(event.target.checked)} /> Remove
            the stored key
          </span>
        </label>
      )}
      {error !== undefined && <ErrorNotice message={error} />}
      <span className="agiflow-manage-actions">
        <Button type="submit" className="jp-mod-accept" data-testid="agiflow-model-save" disabled={busy !== null}>
          {busy ? 'Saving…' : editing ? 'Save' : 'Add connection'}
        </Button>
        <Button type="button" minimal onClick={() => onDone(false)}>
          Cancel
        </Button>
      </span>
    </form>
  );
}
