/**
 * Wire types of the AGIFlow REST API (`/agiflow/api/v1`), hand-mirrored from
 * the server's pydantic models (`agiflow_lab/prompts/models.py`,
 * `agiflow_lab/core/paging.py`; the served OpenAPI document is
 * `/agiflow/api/v1/openapi.json`). Rename a field there, rename it here: the
 * compiler then finds every use.
 */

/** A page of results. `next_cursor` is null on the last page. */
export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

/** GET /projects → Page<Project> */
export interface Project {
  slug: string;
  name: string;
  description?: string;
  created_by?: string;
  created_at?: string;
  /** the caller's role in the project, e.g. "owner" */
  role?: string;
}

export type PromptType = 'text' | 'chat';

/** One message of a chat template. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'developer' | 'tool';
  content: string;
}

/** A text prompt holds a string; a chat prompt holds a list of messages. */
export type PromptTemplate = string | ChatMessage[];

/** GET /projects/{slug}/prompts → Page<PromptSummary> */
export interface PromptSummary {
  name: string;
  type: PromptType;
  description: string;
  tags: string[];
  latest_version: number;
  /** label name → version number it points at, e.g. `{"production": 3}` */
  labels: Record<string, number>;
  created_by?: string;
  created_at?: string;
  updated_at: string;
  archived?: boolean;
}

/** GET /projects/{slug}/prompts/{name}?label=… → PromptVersion */
export interface PromptVersion {
  name: string;
  type: PromptType;
  version: number;
  template: PromptTemplate;
  variables: string[];
  config: Record<string, unknown>;
  commit_message: string;
  /** labels pointing at this version, e.g. `["production"]` */
  labels: string[];
  created_by: string;
  created_at: string;
  archived?: boolean;
}

/** Body of every non-2xx answer of the API. */
export interface ApiErrorBody {
  error: {
    code: string;
    message: string;
    details?: unknown;
  };
}

/** `agiflow_lab/jobs/models.py` JobState. */
export type JobState =
  | 'queued'
  | 'dispatched'
  | 'running'
  | 'retrying'
  | 'succeeded'
  | 'failed'
  | 'cancelled';

export const FINAL_JOB_STATES: ReadonlySet<JobState> = new Set<JobState>([
  'succeeded',
  'failed',
  'cancelled'
]);

/** Where and why a notebook job failed. */
export interface JobError {
  cell_index: number | null;
  ename: string;
  evalue: string;
  traceback: string[];
}

/** GET /projects/{slug}/jobs → Page<Job>; POST …/jobs → Job */
export interface Job {
  id: string;
  project: string;
  notebook: string;
  parameters: Record<string, unknown>;
  state: JobState;
  idempotency_key?: string | null;
  submitted_by: string;
  worker_id: string | null;
  attempts: number;
  max_attempts?: number;
  timeout_seconds?: number;
  cells_done: number;
  cells_total: number | null;
  error: JobError | null;
  result?: unknown;
  cancel_requested?: boolean;
  created_at: string;
  dispatched_at?: string | null;
  started_at: string | null;
  finished_at: string | null;
  updated_at?: string;
}

/** POST /projects/{slug}/jobs */
export interface JobSubmit {
  notebook: string;
  parameters: Record<string, unknown>;
}

/** POST …/jobs/{id}/notebook/open */
export interface OpenedNotebook {
  path: string;
}

/** One message of the `/events` WebSocket (and of GET …/jobs/{id}/events). */
export interface JobEvent {
  id: number;
  job_id: string;
  project: string;
  attempt: number;
  type: 'state' | 'progress' | 'log';
  data: Record<string, unknown>;
  at: string;
}

/*
 * Evaluation runs (`agiflow_lab/evals/models.py`).
 *
 * The server types a run's `prompt`, `dataset` and `model` as open dicts; the
 * interfaces below spell out the keys the evals service always fills (see the
 * field descriptions there) and keep any others as `unknown`.
 */

/** `Run.prompt`: the pinned version and what was asked (`label:latest`, `version:3`). */
export interface RunPrompt {
  name: string;
  version: number;
  ref: string;
  [key: string]: unknown;
}

/** `Run.dataset`: the pinned dataset version. */
export interface RunDataset {
  name: string;
  version: number;
  [key: string]: unknown;
}

/** `Run.model`: the connection and model the run called. */
export interface RunModel {
  connection: string;
  kind: string;
  model: string;
  params: Record<string, unknown>;
  /** the built-in echo connection: no model was called */
  builtin: boolean;
  [key: string]: unknown;
}

/** One evaluator of `Run.evaluators`: its spec as submitted, with `name` filled in. */
export interface RunEvaluator {
  name: string;
  type: string;
  threshold: number;
  [option: string]: unknown;
}

/** EvaluatorAggregate */
export interface EvaluatorAggregate {
  name: string;
  type: string;
  threshold: number;
  /** items this evaluator scored (errors and failed model calls excluded) */
  scored: number;
  passed: number;
  /** passed / items finished; null before any item finished */
  pass_rate: number | null;
  mean_score: number | null;
  errors: number;
}

/** RunAggregates: computed from the results at any moment of a run. */
export interface RunAggregates {
  items_total: number;
  items_done: number;
  passed: number;
  /** items where every evaluator passed / items finished */
  pass_rate: number | null;
  mean_score: number | null;
  /** items whose model call (or rendering) failed */
  errors: number;
  evaluator_errors: number;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
  tokens_in: number;
  tokens_out: number;
  /** USD; null when any finished item is unpriced */
  cost: number | null;
  unpriced_items: number;
  evaluators: EvaluatorAggregate[];
}

/** GET /projects/{slug}/evals/runs → Page<Run>; GET …/evals/runs/{id} → Run */
export interface Run {
  id: string;
  project: string;
  name: string;
  state: JobState;
  job_id: string;
  prompt: RunPrompt;
  dataset: RunDataset;
  model: RunModel;
  evaluators: RunEvaluator[];
  concurrency: number;
  max_retries: number;
  request_timeout: number;
  created_by: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  error: JobError | null;
  aggregates: RunAggregates;
}

/** ItemScore: one evaluator's verdict on one item. */
export interface ItemScore {
  score: number | null;
  passed: boolean | null;
  explanation: string;
  error: string | null;
}

/** GET …/evals/runs/{id}/results → Page<ItemResult> */
export interface ItemResult {
  item_id: string;
  ordinal: number;
  input: Record<string, unknown>;
  expected: unknown;
  rendered: unknown;
  output: string | null;
  error: string | null;
  latency_ms: number | null;
  tokens_in: number | null;
  tokens_out: number | null;
  cost: number | null;
  attempts: number;
  /** evaluator name → its verdict */
  scores: Record<string, ItemScore>;
  score: number | null;
  passed: boolean;
}

/**
 * The verdict of the last run against the first (the baseline): regressed is
 * pass → fail, improved is fail → pass; a score that moves while the verdict
 * stays is unchanged (see `score_delta`).
 */
export type Change = 'regressed' | 'improved' | 'unchanged' | 'missing';

/** ItemComparison */
export interface ItemComparison {
  item_id: string;
  input: Record<string, unknown>;
  expected: unknown;
  change: Change;
  /** the last run's score minus the baseline's; null when either has no score */
  score_delta: number | null;
  /** one per run, in the order asked; null if the item is not in that run */
  results: Array<ItemResult | null>;
}

/** GET …/evals/compare?runs=a,b → Comparison (the first run is the baseline) */
export interface Comparison {
  runs: Run[];
  /** items that passed in the baseline and fail in the last run */
  regressed: number;
  /** items that failed in the baseline and pass in the last run */
  improved: number;
  /** items with the same verdict in both runs, whatever their scores */
  unchanged: number;
  /** items in only one of the two runs */
  missing: number;
  /** unchanged items whose score rose in the last run */
  score_up: number;
  /** unchanged items whose score fell in the last run */
  score_down: number;
  /** the changed items, a page at a time */
  items: ItemComparison[];
  next_cursor: string | null;
}

/** `data` of a `progress` event of an evaluation job (`unit: "items"`). */
export interface ItemProgress {
  unit: 'items';
  run_id: string;
  done: number;
  total: number;
  passed: number;
  errors: number;
}

/*
 * Traces (`agiflow_lab/traces/results.py`, `agiflow_lab/traces/service.py`,
 * `agiflow_lab/traces/records.py`). Times are ISO 8601 UTC to the microsecond.
 */

export type TraceStatus = 'ok' | 'error';
export type SpanStatus = 'unset' | 'ok' | 'error';
export type SpanKind = 'internal' | 'server' | 'client' | 'producer' | 'consumer' | 'unspecified';
export type SpanType =
  | 'llm'
  | 'chat'
  | 'embedding'
  | 'retriever'
  | 'tool'
  | 'agent'
  | 'chain'
  | 'evaluator'
  | 'reranker'
  | 'guardrail'
  | 'other';

/** GET /projects/{slug}/traces → Page<TraceSummary> */
export interface TraceSummary {
  trace_id: string;
  /** the root span's name; the earliest span's until the root arrives */
  name: string;
  start_time: string;
  end_time: string;
  duration_ms: number;
  /** error when any span of the trace failed */
  status: TraceStatus;
  has_root: boolean;
  span_count: number;
  error_count: number;
  tokens_in: number;
  tokens_out: number;
  /** of the priced spans; see unpriced_count */
  cost_usd: number;
  /** spans naming a model that had no price: cost_usd leaves them out */
  unpriced_count: number;
  models: string[];
  session_id: string | null;
  user_id: string | null;
  prompt_name: string | null;
  prompt_version: number | null;
  input_preview: string | null;
  output_preview: string | null;
}

/** TraceQuery: the trace list's filters, ANDed. */
export interface TraceFilters {
  start?: string;
  end?: string;
  status?: TraceStatus;
  model?: string;
  /** the root span's name, exactly */
  name?: string;
  user?: string;
  session?: string;
  prompt_name?: string;
  prompt_version?: number;
  min_latency_ms?: number;
  /** case-insensitive, in the input/output previews */
  text?: string;
}

export interface TraceSpanEvent {
  name: string;
  time: string;
  attributes: Record<string, unknown>;
}

/** One stored span of GET /projects/{slug}/traces/{trace_id}. */
export interface TraceSpan {
  trace_id: string;
  span_id: string;
  /** null for the root span */
  parent_span_id: string | null;
  name: string;
  kind: SpanKind;
  start_time: string;
  end_time: string;
  duration_ms: number;
  status: SpanStatus;
  status_message: string | null;
  service_name: string | null;
  scope_name: string | null;
  span_type: SpanType;
  model: string | null;
  provider: string | null;
  input: string | null;
  output: string | null;
  tokens_in: number | null;
  tokens_out: number | null;
  /** null: unpriced (unknown model or no token counts), not free */
  cost_usd: number | null;
  session_id: string | null;
  user_id: string | null;
  tags: string[];
  prompt_name: string | null;
  prompt_version: number | null;
  attributes: Record<string, unknown>;
  events: TraceSpanEvent[];
  resource_attributes: Record<string, unknown>;
}

/** GET /projects/{slug}/traces/{trace_id}?cursor=… → TraceDetail (spans in start order) */
export interface TraceDetail {
  trace_id: string;
  spans: TraceSpan[];
  next_cursor: string | null;
}

/** GET /projects/{slug}/sessions and …/users → Page<GroupSummary> */
export interface GroupSummary {
  /** the session id or user id */
  id: string;
  trace_count: number;
  first_seen: string;
  last_seen: string;
  /** traces with a failed span */
  error_count: number;
  tokens_in: number;
  tokens_out: number;
  cost_usd: number;
  unpriced_count: number;
}

export type MetricsBucket = 'minute' | 'hour' | 'day';
export type MetricsGroupBy = 'model' | 'prompt_version' | 'span_name' | 'user';
export type MetricsMeasure = 'count' | 'errors' | 'latency' | 'tokens' | 'cost';

/** One bucket (and group) of GET /projects/{slug}/metrics; measures not asked for are null. */
export interface MetricPoint {
  /** start of the bucket (UTC) */
  time: string;
  /** the group_by dimension's value(s), e.g. `{"model": "gpt-4o"}`; `{}` without one */
  group: Record<string, string | number | null>;
  count: number | null;
  errors: number | null;
  error_rate: number | null;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
  latency_p99_ms: number | null;
  tokens_in: number | null;
  tokens_out: number | null;
  cost_usd: number | null;
  unpriced_count: number | null;
}

/** GET /projects/{slug}/metrics → Metrics; buckets without spans are absent */
export interface Metrics {
  start: string;
  end: string;
  bucket: MetricsBucket;
  group_by: MetricsGroupBy | null;
  points: MetricPoint[];
}

/** `agiflow_lab/jobs/models.py` WorkerStatus (server admins only). */
export interface WorkerStatus {
  id: string;
  hostname: string;
  pid: number;
  topics: string[];
  concurrency: number;
  running: number;
  started_at: string;
  heartbeat_at: string;
  alive: boolean;
}

export interface BusStatus {
  backend: string;
  state: 'unknown' | 'up' | 'down';
  since: string;
  error?: string | null;
}

/** GET /status?project=… → QueueStatus */
export interface QueueStatus {
  project?: string | null;
  bus?: BusStatus | null;
  workers: WorkerStatus[];
  workers_alive: number;
  queued: number;
  dispatched: number;
  running: number;
  oldest_queued_seconds: number | null;
}

/* Scores (`agiflow_lab/traces/scores.py`) and spans to dataset items (`agiflow_lab/traces/to_dataset.py`). */

export type ScoreType = 'numeric' | 'categorical' | 'boolean';
export type ScoreSource = 'human' | 'api' | 'eval';

/** GET /projects/{slug}/scores?trace_id=… → Page<Score>; POST …/scores → Score */
export interface Score {
  id: string;
  /** null only for an agiflow-sdk alias no stored trace carries yet */
  trace_id: string | null;
  trace_alias: string | null;
  /** null: the trace's score */
  span_id: string | null;
  name: string;
  data_type: ScoreType;
  value: boolean | number | string;
  source: ScoreSource;
  comment: string | null;
  author: string;
  created_at: string;
}

/** POST /projects/{slug}/scores: the value's JSON type decides the score's type. */
export interface ScoreIn {
  trace_id: string;
  span_id?: string | null;
  name: string;
  value: boolean | number | string;
  comment?: string | null;
}

export interface SpanRef {
  trace_id: string;
  span_id: string;
}

/** POST /projects/{slug}/datasets/{name}/from-spans → DatasetVersion (201) */
export interface DatasetVersion {
  name: string;
  version: number;
  item_count: number;
  message: string;
  created_by: string;
  created_at: string;
}

/** GET /projects/{slug}/datasets → Page<Dataset> */
export interface Dataset {
  name: string;
  description: string;
  /** 0: created empty, nothing written yet */
  latest_version: number;
  item_count: number;
  created_by: string;
  created_at: string;
  updated_at: string;
  archived: boolean;
}
