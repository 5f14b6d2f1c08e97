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
