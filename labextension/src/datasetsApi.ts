/**
 * The dataset routes the Datasets view uses, typed from `schema.d.ts`, over
 * the generic `AgiflowApi.read` / `call` (and one raw request: the import
 * body is a CSV or JSONL file, not JSON).
 */
import { ServerConnection } from '@jupyterlab/services';

import { AgiflowApi, AgiflowApiError, errorMessage } from './api';
import type { components } from './schema';
import type { Dataset, DatasetVersion, Page } from './types';

type Schemas = components['schemas'];

export type DatasetItem = Schemas['DatasetItem'];
export type ItemIn = Schemas['ItemIn'];
export type DatasetCreate = Schemas['DatasetCreate'];
export type ImportFormat = 'csv' | 'jsonl';
export type WriteMode = Schemas['ItemsWrite']['mode'];

/** `?mapping=` of the import route (the server's `ColumnMapping`): a field left out takes its default. */
export interface ColumnMapping {
  input?: string[];
  expected?: string | null;
  metadata?: string[];
  id?: string | null;
}

/** One refused row of an import (`details.rows` of its 422): row 0 is the header. */
export interface RowError {
  row: number;
  field?: string;
  message: string;
}

export interface ImportOptions {
  format: ImportFormat;
  mode: WriteMode;
  mapping?: ColumnMapping;
  message?: string;
}

const CONTENT_TYPES: Record<ImportFormat, string> = { csv: 'text/csv', jsonl: 'application/x-ndjson' };

export class DatasetsApi {
  constructor(
    readonly api: AgiflowApi,
    private readonly settings: ServerConnection.ISettings
  ) {}

  list(project: string, search: string, cursor: string | null, limit = 50): Promise<Page<'Dataset'>> {
    return this.api.read(['projects', project, 'datasets'], { search, cursor, limit });
  }

  get(project: string, name: string): Promise<Dataset> {
    return this.api.read(['projects', project, 'datasets', name]);
  }

  create(project: string, body: DatasetCreate): Promise<Dataset> {
    return this.api.call('POST', ['projects', project, 'datasets'], body);
  }

  versions(project: string, name: string, cursor: string | null, limit = 20): Promise<Page<'DatasetVersion'>> {
    return this.api.read(['projects', project, 'datasets', name, 'versions'], { cursor, limit });
  }

  items(
    project: string,
    name: string,
    version: number,
    cursor: string | null,
    limit = 50
  ): Promise<Page<'DatasetItem'>> {
    return this.api.read(['projects', project, 'datasets', name, 'items'], { version, cursor, limit });
  }

  /** Add items, or update those whose id exists: a new version. */
  writeItems(project: string, name: string, items: ItemIn[], message = ''): Promise<DatasetVersion> {
    return this.api.call('POST', ['projects', project, 'datasets', name, 'items'], { items, mode: 'append', message });
  }

  deleteItem(project: string, name: string, id: string): Promise<DatasetVersion> {
    return this.api.call('DELETE', ['projects', project, 'datasets', name, 'items', id]);
  }

  /** The export route (JSONL), for a download link. */
  exportUrl(project: string, name: string, version: number): string {
    return this.api.url(['projects', project, 'datasets', name, 'export'], { version, format: 'jsonl' });
  }

  /**
   * Upload a CSV or JSONL file: a new version, or an `AgiflowApiError` whose
   * `details.rows` list the refused rows (nothing is written then).
   */
  async importFile(project: string, name: string, file: Blob, options: ImportOptions): Promise<DatasetVersion> {
    const url = this.api.url(['projects', project, 'datasets', name, 'import'], {
      format: options.format,
      mode: options.mode,
      mapping: options.mapping ? JSON.stringify(options.mapping) : undefined,
      message: options.message
    });
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        url,
        { method: 'POST', body: file, cache: 'no-cache', headers: { 'Content-Type': CONTENT_TYPES[options.format] } },
        this.settings
      );
    } catch (reason) {
      throw new AgiflowApiError(`Cannot reach the Jupyter server: ${errorMessage(reason)}`, 'network_error', 0);
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (!response.ok) {
      const error = (body as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
      throw new AgiflowApiError(
        error?.message ?? `The server answered HTTP ${response.status} ${response.statusText}`.trim(),
        error?.code ?? 'http_error',
        response.status,
        error?.details
      );
    }
    return body as DatasetVersion;
  }
}

/** The refused rows an import error carries, if any. */
export function rowErrors(reason: unknown): RowError[] {
  if (!(reason instanceof AgiflowApiError)) {
    return [];
  }
  const rows = (reason.details as { rows?: unknown } | undefined)?.rows;
  return Array.isArray(rows) ? (rows as RowError[]) : [];
}
