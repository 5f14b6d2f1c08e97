/**
 * The one place that talks to the AGIFlow REST API.
 *
 * Requests go through `ServerConnection.makeRequest`, so they carry the
 * Jupyter token / XSRF cookie and honour the server's base URL.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  ApiErrorBody,
  Comparison,
  Dataset,
  DatasetVersion,
  Job,
  JobSubmit,
  Metrics,
  MetricsBucket,
  MetricsGroupBy,
  MetricsMeasure,
  OpenedNotebook,
  Page,
  ProjectList,
  PromptVersion,
  QueueStatus,
  Run,
  RunPage,
  Score,
  ScoreIn,
  SpanRef,
  TraceDetail,
  TraceFilters
} from './types';

const API_PREFIX = 'agiflow/api/v1';

/** An API failure whose `message` is fit to show to the user. */
export class AgiflowApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly status: number,
    readonly details?: unknown
  ) {
    super(message);
    this.name = 'AgiflowApiError';
  }
}

export type Query = Record<string, string | number | null | undefined>;

export interface ListPromptsOptions {
  search?: string;
  limit?: number;
  cursor?: string | null;
}

export interface PageOptions {
  limit?: number;
  cursor?: string | null;
}

export interface TraceListOptions extends TraceFilters, PageOptions {}

export interface MetricsOptions {
  start: string;
  end: string;
  bucket: MetricsBucket;
  groupBy?: MetricsGroupBy | null;
  /** default: every measure */
  measures?: MetricsMeasure[];
}

export interface RunResultsOptions extends PageOptions {
  /** only items that did not pass (errors included) */
  failedOnly?: boolean;
}

export class AgiflowApi {
  constructor(private readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  listProjects(): Promise<ProjectList> {
    return this.get<ProjectList>(['projects']);
  }

  listPrompts(
    project: string,
    { search = '', limit = 50, cursor }: ListPromptsOptions = {}
  ): Promise<Page<'PromptSummary'>> {
    return this.get<Page<'PromptSummary'>>(['projects', project, 'prompts'], {
      search,
      limit,
      cursor: cursor ?? undefined
    });
  }

  getPrompt(project: string, name: string, label = 'latest'): Promise<PromptVersion> {
    return this.get<PromptVersion>(['projects', project, 'prompts', name], {
      label
    });
  }

  listJobs(project: string, limit = 50, cursor: string | null = null): Promise<Page<'Job'>> {
    return this.get<Page<'Job'>>(['projects', project, 'jobs'], { limit, cursor });
  }

  getJob(project: string, id: string): Promise<Job> {
    return this.get<Job>(['projects', project, 'jobs', id]);
  }

  submitJob(project: string, body: JobSubmit): Promise<Job> {
    return this.send<Job>('POST', ['projects', project, 'jobs'], body);
  }

  cancelJob(project: string, id: string): Promise<Job> {
    return this.send<Job>('POST', ['projects', project, 'jobs', id, 'cancel']);
  }

  retryJob(project: string, id: string): Promise<Job> {
    return this.send<Job>('POST', ['projects', project, 'jobs', id, 'retry']);
  }

  /** Copy the executed notebook into the Jupyter files; answers its path. */
  openJobNotebook(project: string, id: string): Promise<OpenedNotebook> {
    return this.send<OpenedNotebook>('POST', ['projects', project, 'jobs', id, 'notebook', 'open']);
  }

  /** Evaluation runs, newest first, each with its live aggregates. */
  listRuns(project: string, { limit = 50, cursor }: PageOptions = {}): Promise<RunPage> {
    return this.get<RunPage>(['projects', project, 'evals', 'runs'], {
      limit,
      cursor: cursor ?? undefined
    });
  }

  getRun(project: string, id: string): Promise<Run> {
    return this.get<Run>(['projects', project, 'evals', 'runs', id]);
  }

  /** A run's per-item results in dataset order. */
  listRunResults(
    project: string,
    id: string,
    { failedOnly = false, limit = 50, cursor }: RunResultsOptions = {}
  ): Promise<Page<'ItemResult'>> {
    return this.get<Page<'ItemResult'>>(['projects', project, 'evals', 'runs', id, 'results'], {
      failed_only: failedOnly ? 'true' : undefined,
      limit,
      cursor: cursor ?? undefined
    });
  }

  cancelRun(project: string, id: string): Promise<Run> {
    return this.send<Run>('POST', ['projects', project, 'evals', 'runs', id, 'cancel']);
  }

  /** Runs side by side; the first is the baseline, `items` are the changed ones. */
  compareRuns(project: string, runIds: string[], { limit = 50, cursor }: PageOptions = {}): Promise<Comparison> {
    return this.get<Comparison>(['projects', project, 'evals', 'compare'], {
      runs: runIds.join(','),
      limit,
      cursor: cursor ?? undefined
    });
  }

  /** Traces newest first (by their earliest span); the filters are ANDed. */
  listTraces(
    project: string,
    { limit = 50, cursor, ...filters }: TraceListOptions = {}
  ): Promise<Page<'TraceSummary'>> {
    return this.get<Page<'TraceSummary'>>(['projects', project, 'traces'], {
      ...filters,
      limit,
      cursor: cursor ?? undefined
    });
  }

  /** One page of a trace's spans, in start order. */
  getTrace(project: string, traceId: string, { limit = 200, cursor }: PageOptions = {}): Promise<TraceDetail> {
    return this.get<TraceDetail>(['projects', project, 'traces', traceId], {
      limit,
      cursor: cursor ?? undefined
    });
  }

  /** Sessions or users seen in [start, end), most recently seen first. */
  listTraceGroups(
    project: string,
    by: 'sessions' | 'users',
    { start, end, limit = 50, cursor }: PageOptions & { start?: string; end?: string } = {}
  ): Promise<Page<'GroupSummary'>> {
    return this.get<Page<'GroupSummary'>>(['projects', project, by], {
      start,
      end,
      limit,
      cursor: cursor ?? undefined
    });
  }

  /** Span metrics per bucket (and group), from the span writers' rollups. */
  getMetrics(project: string, { start, end, bucket, groupBy, measures }: MetricsOptions): Promise<Metrics> {
    return this.get<Metrics>(['projects', project, 'metrics'], {
      start,
      end,
      bucket,
      group_by: groupBy ?? undefined,
      measures: measures?.join(',')
    });
  }

  /** Scores of a trace (and its spans), newest first. */
  listScores(project: string, traceId: string, { limit = 100, cursor }: PageOptions = {}): Promise<Page<'Score'>> {
    return this.get<Page<'Score'>>(['projects', project, 'scores'], {
      trace_id: traceId,
      limit,
      cursor: cursor ?? undefined
    });
  }

  createScore(project: string, body: ScoreIn): Promise<Score> {
    return this.send<Score>('POST', ['projects', project, 'scores'], body);
  }

  listDatasets(project: string, limit = 100): Promise<Page<'Dataset'>> {
    return this.get<Page<'Dataset'>>(['projects', project, 'datasets'], { limit });
  }

  /** An empty dataset (version 0). */
  createDataset(project: string, name: string, description = ''): Promise<Dataset> {
    return this.send<Dataset>('POST', ['projects', project, 'datasets'], { name, description });
  }

  /** A new version of dataset `name` with the spans as items (input, output as expected). */
  addSpansToDataset(project: string, name: string, spans: SpanRef[]): Promise<DatasetVersion> {
    return this.send<DatasetVersion>('POST', ['projects', project, 'datasets', name, 'from-spans'], { spans });
  }

  /** Workers alive and the job queue, for one project (the deployment's workers for admins). */
  getStatus(project?: string): Promise<QueueStatus> {
    return this.get<QueueStatus>(['status'], { project });
  }

  /**
   * The URL of the project's job-event WebSocket, resuming after event `after`.
   * Authenticated like JupyterLab's own sockets: the token as a query
   * parameter when there is one, else the session cookie (same origin).
   */
  eventsUrl(project: string, after: number | 'latest'): string {
    return this.socketUrl(['events'], { project, after: String(after) });
  }

  /** The URL of a project's "something new" WebSocket, `/projects/{p}/<what>/live` (traces, notifications). */
  liveUrl(project: string, what: 'traces' | 'notifications'): string {
    return this.socketUrl(['projects', encodeURIComponent(project), what, 'live'], {});
  }

  /** A WebSocket URL under the API, authenticated as `eventsUrl` says. */
  private socketUrl(path: string[], query: Record<string, string>): string {
    const params = new URLSearchParams(query);
    if (this.settings.token) {
      params.set('token', this.settings.token);
    }
    const url = URLExt.join(this.settings.wsUrl, API_PREFIX, ...path);
    return params.size ? `${url}?${params}` : url;
  }

  /** A WebSocket constructor that fits the server settings. */
  get WebSocket(): typeof WebSocket {
    return this.settings.WebSocket;
  }

  /** The absolute URL of an API path; each segment is percent-encoded. */
  url(segments: string[], query: Query = {}): string {
    const path = URLExt.join(this.settings.baseUrl, API_PREFIX, ...segments.map(encodeURIComponent));
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== '') {
        params.set(key, String(value));
      }
    }
    const search = params.toString();
    return search ? `${path}?${search}` : path;
  }

  private get<T>(segments: string[], query?: Query): Promise<T> {
    // `no-cache` (revalidate) rather than the default `no-store`, for which
    // ServerConnection appends a bare `&<timestamp>` cache-buster parameter.
    return this.request<T>(this.url(segments, query), {
      method: 'GET',
      cache: 'no-cache'
    });
  }

  private send<T>(method: 'POST', segments: string[], body?: unknown): Promise<T> {
    return this.call<T>(method, segments, body);
  }

  /**
   * Any write: `body` sent as JSON. An answer without a body (204) resolves to
   * undefined, which only callers of answer-less routes (DELETE) may expect.
   */
  call<T>(method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', segments: string[], body?: unknown, query?: Query): Promise<T> {
    return this.request<T>(
      this.url(segments, query),
      {
        method,
        cache: 'no-cache',
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: body === undefined ? undefined : { 'Content-Type': 'application/json' }
      },
      method === 'DELETE'
    );
  }

  /** Any read, for views with routes of their own. */
  read<T>(segments: string[], query?: Query): Promise<T> {
    return this.get<T>(segments, query);
  }

  private async request<T>(url: string, init: RequestInit, emptyOk = false): Promise<T> {
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (reason) {
      throw new AgiflowApiError(`Cannot reach the Jupyter server: ${errorMessage(reason)}`, 'network_error', 0);
    }
    const body = await readJson(response);
    if (!response.ok) {
      throw toApiError(response, body);
    }
    if (body === undefined && emptyOk && response.status === 204) {
      return undefined as T;
    }
    if (body === undefined) {
      throw new AgiflowApiError(
        `The server answered ${url} with something that is not JSON.`,
        'bad_response',
        response.status
      );
    }
    return body as T;
  }
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) {
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isApiErrorBody(body: unknown): body is ApiErrorBody {
  if (typeof body !== 'object' || body === null || !('error' in body)) {
    return false;
  }
  const error = body.error;
  return typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string';
}

function toApiError(response: Response, body: unknown): AgiflowApiError {
  if (isApiErrorBody(body)) {
    const { code, message, details } = body.error;
    return new AgiflowApiError(message, code || 'error', response.status, details);
  }
  if (response.status === 404) {
    // Jupyter's own 404 page: the server extension is not loaded.
    return new AgiflowApiError(
      'The AGIFlow server extension is not enabled on this Jupyter server ' + '(HTTP 404 from /agiflow/api/v1).',
      'not_found',
      404
    );
  }
  return new AgiflowApiError(
    `The server answered HTTP ${response.status} ${response.statusText}`.trim(),
    'http_error',
    response.status
  );
}

/** The message to show for anything a request may throw. */
export function errorMessage(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}
