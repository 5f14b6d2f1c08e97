import { Button, InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { DatasetItem, DatasetsApi, ItemIn } from './datasetsApi';
import { EditDeleteButtons } from './EditableSection';
import { ErrorNotice } from './ErrorNotice';
import { confirmAction } from './manageDialogs';
import type { DatasetVersion, Page } from './types';
import { useAction } from './useAction';
import { usePages } from './usePages';

const PAGE_SIZE = 50;

export interface DatasetItemsProps {
  api: DatasetsApi;
  project: string;
  name: string;
  version: number;
  /** The latest version, shown to an editor: items can be added, edited and deleted. */
  editable: boolean;
  refresh: unknown;
  onWritten: (version: DatasetVersion, what: string) => void;
}

/**
 * The items of one version, paged in their stable order. The API has no item
 * search: the filter narrows the items loaded so far (load more to widen it).
 */
export function DatasetItems(props: DatasetItemsProps): JSX.Element {
  const { api, project, name, version, editable, refresh, onWritten } = props;
  const pages = usePages<Page<'DatasetItem'>, DatasetItem>(
    cursor => api.items(project, name, version, cursor, PAGE_SIZE),
    [api, project, name, version],
    refresh
  );
  const [filter, setFilter] = React.useState('');
  const [editing, setEditing] = React.useState<DatasetItem | 'new' | null>(null);
  const { busy, error, act } = useAction(`${name}:${version}`);

  const needle = filter.trim().toLowerCase();
  const shown = needle ? pages.items.filter(item => JSON.stringify(item).toLowerCase().includes(needle)) : pages.items;

  const remove = (item: DatasetItem): Promise<void> =>
    act(`delete:${item.id}`, async () => {
      if (
        !(await confirmAction(
          'Delete item',
          `Delete item "${item.id}"? A new version is written without it; older versions keep it.`,
          'Delete'
        ))
      ) {
        return;
      }
      onWritten(await api.deleteItem(project, name, item.id), `Item ${item.id} deleted`);
    });

  return (
    <section className="agiflow-manage-section agiflow-dataset-items" aria-labelledby="agiflow-dataset-items-title">
      <h4 id="agiflow-dataset-items-title">Items of v{version}</h4>
      <div className="agiflow-manage-form">
        <label className="agiflow-field">
          <span>Filter</span>
          <InputGroup
            type="search"
            data-testid="agiflow-item-filter"
            placeholder={pages.hasMore ? 'Text in the items loaded so far' : 'Text in the items'}
            value={filter}
            onChange={event => setFilter(event.target.value)}
          />
        </label>
        {editable && editing === null && (
          <Button className="jp-mod-accept" data-testid="agiflow-item-add" onClick={() => setEditing('new')}>
            Add item
          </Button>
        )}
      </div>
      {editing !== null && (
        <ItemEditor
          item={editing === 'new' ? null : editing}
          busy={busy === 'save'}
          onCancel={() => setEditing(null)}
          onSave={item =>
            act('save', async () => {
              const v = await api.writeItems(project, name, [item]);
              setEditing(null);
              onWritten(v, editing === 'new' ? 'Item added' : `Item ${item.id ?? ''} saved`);
            })
          }
        />
      )}
      {error !== undefined && <ErrorNotice message={error} />}
      {pages.error !== undefined && <ErrorNotice message={pages.error} />}
      {shown.length === 0 ? (
        <div className="agiflow-status">
          {pages.loading ? 'Loading items…' : needle ? 'No loaded item matches.' : 'This version has no items.'}
        </div>
      ) : (
        <table className="agiflow-table agiflow-manage-table" data-testid="agiflow-item-table">
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Input</th>
              <th scope="col">Expected</th>
              <th scope="col">Metadata</th>
              {editable && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {shown.map(item => (
              <tr key={item.id} data-testid="agiflow-item-row" data-item-id={item.id}>
                <td>
                  <code>{item.id}</code>
                </td>
                <td>
                  <div className="agiflow-dataset-json">{compact(item.input)}</div>
                </td>
                <td>
                  <div className="agiflow-dataset-json">{item.expected === null ? '—' : compact(item.expected)}</div>
                </td>
                <td>
                  <div className="agiflow-dataset-json">
                    {Object.keys(item.metadata).length ? compact(item.metadata) : '—'}
                  </div>
                </td>
                {editable && (
                  <td>
                    <span className="agiflow-manage-actions">
                      <EditDeleteButtons
                        name={`item ${item.id}`}
                        disabled={busy !== null}
                        onEdit={() => setEditing(item)}
                        onDelete={() => void remove(item)}
                        testIdPrefix="agiflow-item"
                      />
                    </span>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pages.hasMore && (
        <div className="agiflow-more">
          <Button minimal disabled={pages.loading} onClick={pages.loadMore}>
            {pages.loading ? 'Loading…' : `Load ${PAGE_SIZE} more`}
          </Button>
        </div>
      )}
    </section>
  );
}

function compact(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Add (item null) or edit an item: input and metadata are JSON objects, expected any JSON (or plain text). */
function ItemEditor(props: {
  item: DatasetItem | null;
  busy: boolean;
  onSave: (item: ItemIn) => Promise<void>;
  onCancel: () => void;
}): JSX.Element {
  const { item, busy, onSave, onCancel } = props;
  const [id, setId] = React.useState(item?.id ?? '');
  const [input, setInput] = React.useState(item ? JSON.stringify(item.input, null, 2) : '{\n  "question": ""\n}');
  const [expected, setExpected] = React.useState(
    item === null || item.expected === null ? '' : JSON.stringify(item.expected, null, 2)
  );
  const [metadata, setMetadata] = React.useState(
    item && Object.keys(item.metadata).length ? JSON.stringify(item.metadata, null, 2) : ''
  );
  const [problem, setProblem] = React.useState<string | undefined>();

  const submit = (event: React.FormEvent): void => {
    event.preventDefault();
    const parsedInput = parseObject(input, 'Input');
    const parsedMetadata = metadata.trim() ? parseObject(metadata, 'Metadata') : {};
    if (typeof parsedInput === 'string' || typeof parsedMetadata === 'string') {
      setProblem(typeof parsedInput === 'string' ? parsedInput : (parsedMetadata as string));
      return;
    }
    setProblem(undefined);
    void onSave({
      id: id.trim() || null,
      input: parsedInput,
      expected: parseLoose(expected),
      metadata: parsedMetadata
    });
  };

  return (
    <form
      className="agiflow-manage-form agiflow-manage-form-stacked agiflow-item-editor"
      data-testid="agiflow-item-editor"
      onSubmit={submit}
    >
      <label className="agiflow-field">
        <span>Id</span>
        <InputGroup
          data-testid="agiflow-item-id"
          placeholder="optional: generated when empty"
          value={id}
          disabled={item !== null}
          maxLength={256}
          onChange={event => setId(event.target.value)}
        />
      </label>
      <label className="agiflow-field">
        <span>Input (JSON object)</span>
        <textarea
          data-testid="agiflow-item-input"
          rows={4}
          spellCheck={false}
          value={input}
          onChange={event => setInput(event.target.value)}
        />
      </label>
      <label className="agiflow-field">
        <span>Expected (JSON or text)</span>
        <textarea
          data-testid="agiflow-item-expected"
          rows={2}
          spellCheck={false}
          value={expected}
          onChange={event => setExpected(event.target.value)}
        />
      </label>
      <label className="agiflow-field">
        <span>Metadata (JSON object)</span>
        <textarea
          data-testid="agiflow-item-metadata"
          rows={2}
          spellCheck={false}
          placeholder="{}"
          value={metadata}
          onChange={event => setMetadata(event.target.value)}
        />
      </label>
      {problem !== undefined && <ErrorNotice message={problem} />}
      <span className="agiflow-manage-actions">
        <Button type="submit" className="jp-mod-accept" data-testid="agiflow-item-save" disabled={busy}>
          {busy ? 'Saving…' : item === null ? 'Add item (new version)' : 'Save (new version)'}
        </Button>
        <Button type="button" minimal onClick={onCancel}>
          Cancel
        </Button>
      </span>
    </form>
  );
}

function parseObject(text: string, what: string): Record<string, unknown> | string {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
    return `${what} must be a JSON object, e.g. {"question": "2+2?"}.`;
  } catch (reason) {
    return `${what} is not valid JSON: ${reason instanceof Error ? reason.message : String(reason)}`;
  }
}

/** Empty: no expected output; JSON when it parses; else the text itself. */
function parseLoose(text: string): unknown {
  if (!text.trim()) {
    return null;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
