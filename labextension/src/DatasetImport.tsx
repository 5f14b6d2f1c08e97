import { Button, HTMLSelect, InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import { errorMessage } from './api';
import { ColumnMapping, DatasetsApi, ImportFormat, rowErrors, RowError, WriteMode } from './datasetsApi';
import { ErrorNotice } from './ErrorNotice';
import type { DatasetVersion } from './types';

export interface DatasetImportProps {
  api: DatasetsApi;
  project: string;
  name: string;
  onWritten: (version: DatasetVersion) => void;
}

/**
 * Upload a CSV or JSONL file as a new version, with the column mapping. The
 * server checks every row first and writes nothing if any is bad: each refused
 * row is listed with its number and the server's reason.
 */
export function DatasetImport({ api, project, name, onWritten }: DatasetImportProps): JSX.Element {
  const [file, setFile] = React.useState<File | null>(null);
  const [format, setFormat] = React.useState<ImportFormat>('csv');
  const [mode, setMode] = React.useState<WriteMode>('append');
  const [columns, setColumns] = React.useState<string[]>([]);
  const [input, setInput] = React.useState('');
  const [expected, setExpected] = React.useState('');
  const [metadata, setMetadata] = React.useState('');
  const [idColumn, setIdColumn] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | undefined>();
  const [rows, setRows] = React.useState<RowError[]>([]);
  const fileRef = React.useRef<HTMLInputElement>(null);

  const choose = (chosen: File | null): void => {
    setFile(chosen);
    setError(undefined);
    setRows([]);
    setColumns([]);
    if (chosen === null) {
      return;
    }
    const jsonl = /\.(jsonl|ndjson)$/i.test(chosen.name);
    setFormat(jsonl ? 'jsonl' : 'csv');
    if (!jsonl) {
      // The header row names the columns the mapping can use.
      void chosen
        .slice(0, 64 * 1024)
        .text()
        .then(text => setColumns(splitHeader(text.split(/\r?\n/, 1)[0] ?? '')));
    }
  };

  const upload = async (event: React.FormEvent): Promise<void> => {
    event.preventDefault();
    if (file === null) {
      return;
    }
    setBusy(true);
    setError(undefined);
    setRows([]);
    try {
      const version = await api.importFile(project, name, file, {
        format,
        mode,
        mapping: mappingOf(input, expected, metadata, idColumn),
        message: `import ${file.name}`
      });
      setFile(null);
      if (fileRef.current) {
        fileRef.current.value = '';
      }
      onWritten(version);
    } catch (reason) {
      setError(errorMessage(reason));
      setRows(rowErrors(reason));
    } finally {
      setBusy(false);
    }
  };

  return (
    <details className="agiflow-manage-section agiflow-dataset-import" data-testid="agiflow-dataset-import">
      <summary>Upload CSV or JSONL</summary>
      <form className="agiflow-manage-form agiflow-manage-form-stacked" onSubmit={event => void upload(event)}>
        <label className="agiflow-field">
          <span>File</span>
          <input
            ref={fileRef}
            type="file"
            data-testid="agiflow-import-file"
            accept=".csv,.jsonl,.ndjson,text/csv,application/x-ndjson"
            onChange={event => choose(event.target.files?.[0] ?? null)}
          />
        </label>
        <label className="agiflow-field">
          <span>Format</span>
          <HTMLSelect
            data-testid="agiflow-import-format"
            value={format}
            options={['csv', 'jsonl']}
            onChange={event => setFormat(event.target.value as ImportFormat)}
          />
        </label>
        <label className="agiflow-field">
          <span>Mode</span>
          <HTMLSelect
            data-testid="agiflow-import-mode"
            value={mode}
            options={[
              { value: 'append', label: 'append: add new ids, update known ones' },
              { value: 'replace', label: 'replace: the file becomes the whole dataset' }
            ]}
            onChange={event => setMode(event.target.value as WriteMode)}
          />
        </label>
        {columns.length > 0 && (
          <p className="agiflow-muted" data-testid="agiflow-import-columns">
            Columns in the file: {columns.join(', ')}
          </p>
        )}
        <label className="agiflow-field">
          <span>Input columns</span>
          <InputGroup
            data-testid="agiflow-import-input"
            placeholder="comma-separated; default: every column not mapped below"
            value={input}
            onChange={event => setInput(event.target.value)}
          />
        </label>
        <label className="agiflow-field">
          <span>Expected column</span>
          <InputGroup
            data-testid="agiflow-import-expected"
            placeholder="default: expected, if there is one"
            value={expected}
            onChange={event => setExpected(event.target.value)}
          />
        </label>
        <label className="agiflow-field">
          <span>Metadata columns</span>
          <InputGroup
            placeholder="comma-separated; default: none"
            value={metadata}
            onChange={event => setMetadata(event.target.value)}
          />
        </label>
        <label className="agiflow-field">
          <span>Id column</span>
          <InputGroup
            placeholder="default: id, if there is one; else ids are generated"
            value={idColumn}
            onChange={event => setIdColumn(event.target.value)}
          />
        </label>
        <span className="agiflow-manage-actions">
          <Button
            type="submit"
            className="jp-mod-accept"
            data-testid="agiflow-import-upload"
            disabled={busy || file === null}
          >
            {busy ? 'Uploading…' : 'Upload (new version)'}
          </Button>
        </span>
      </form>
      {error !== undefined && <ErrorNotice message={error} />}
      {rows.length > 0 && (
        <table className="agiflow-table agiflow-manage-table agiflow-import-errors" data-testid="agiflow-import-errors">
          <caption>Rows refused (nothing was written)</caption>
          <thead>
            <tr>
              <th scope="col">Row</th>
              <th scope="col">Column</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row, i) => (
              <tr key={i} data-testid="agiflow-import-error" data-row={row.row}>
                <td>{row.row === 0 ? 'header' : `row ${row.row}`}</td>
                <td>{row.field ?? '—'}</td>
                <td>{row.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </details>
  );
}

function list(text: string): string[] {
  return text
    .split(',')
    .map(s => s.trim())
    .filter(s => s !== '');
}

/** Only the fields the user filled in: the server's defaults apply to the rest. */
function mappingOf(input: string, expected: string, metadata: string, id: string): ColumnMapping | undefined {
  const mapping: ColumnMapping = {};
  if (list(input).length) {
    mapping.input = list(input);
  }
  if (expected.trim()) {
    mapping.expected = expected.trim();
  }
  if (list(metadata).length) {
    mapping.metadata = list(metadata);
  }
  if (id.trim()) {
    mapping.id = id.trim();
  }
  return Object.keys(mapping).length ? mapping : undefined;
}

/** The names of a CSV header line (quotes handled; enough for a hint). */
function splitHeader(line: string): string[] {
  const names: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      if (quoted && line[i + 1] === '"') {
        current += '"';
        i++;
      } else {
        quoted = !quoted;
      }
    } else if (c === ',' && !quoted) {
      names.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  names.push(current);
  return names.filter(n => n !== '');
}
