/**
 * Wire types of the AGIFlow REST API (`/agiflow/api/v1`), aliases of
 * `schema.d.ts`, which `jlpm types` generates from the server's OpenAPI
 * document (built from the pydantic models; `scripts/test` fails when it is
 * stale). Rename a field on the server, regenerate: the compiler then finds
 * every use. Only what the document cannot say is written by hand here.
 */
import type { components, operations } from './schema';

type Schemas = components['schemas'];

/** The item types the API pages: pydantic names `Page[Job]` `Page_Job_`. */
export type PagedName = {
  [K in keyof Schemas]: K extends `Page_${infer Item}_` ? Item : never;
}[keyof Schemas];

/** A page of results, e.g. `Page<'Job'>`. `next_cursor` is null on the last page. */
export type Page<Item extends PagedName> = Schemas[`Page_${Item}_`];

/** GET /projects → ProjectList (not paged) */
export type ProjectList = Schemas['ProjectList'];
export type Project = Schemas['Project'];

export type ChatMessage = Schemas['ChatMessage'];
export type PromptSummary = Schemas['PromptSummary'];
export type PromptVersion = Schemas['PromptVersion'];
export type PromptType = PromptVersion['type'];
/** A text prompt holds a string; a chat prompt holds a list of messages. */
export type PromptTemplate = PromptVersion['template'];

/** Body of every non-2xx answer of the API. */
export type ApiErrorBody = Schemas['Error'];

export type Job = Schemas['Job'];
export type JobState = Job['state'];
export type JobError = Schemas['JobError'];
export type JobSubmit = Schemas['JobSubmit'];
export type OpenedNotebook = Schemas['OpenedNotebook'];
/** One message of the `/events` WebSocket (and of GET …/jobs/{id}/events). */
export type JobEvent = Schemas['JobEvent'];

export const FINAL_JOB_STATES: ReadonlySet<JobState> = new Set<JobState>(['succeeded', 'failed', 'cancelled']);

/*
 * Evaluation runs (`agiflow_lab/evals/models.py`).
 *
 * The server types a run's `prompt`, `dataset`, `model` and `evaluators` as
 * open dicts (the field descriptions name their keys); the interfaces below
 * spell out the keys the evals service always fills and keep any others as
 * `unknown`. They are the only hand-written part of `Run`.
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

/** GET /projects/{slug}/evals/runs → Page<'Run'>; GET …/evals/runs/{id} → Run */
export type Run = Omit<Schemas['Run'], 'prompt' | 'dataset' | 'model' | 'evaluators'> & {
  prompt: RunPrompt;
  dataset: RunDataset;
  model: RunModel;
  evaluators: RunEvaluator[];
};

/** GET /projects/{slug}/evals/runs: a page of `Run`s. */
export type RunPage = Omit<Page<'Run'>, 'items'> & { items: Run[] };

export type EvaluatorAggregate = Schemas['EvaluatorAggregate'];
/** Computed from the results at any moment of a run. */
export type RunAggregates = Schemas['RunAggregates'];
/** One evaluator's verdict on one item. */
export type ItemScore = Schemas['ItemScore'];
export type ItemResult = Schemas['ItemResult'];
export type ItemComparison = Schemas['ItemComparison'];
/**
 * The verdict of the last run against the first (the baseline): regressed is
 * pass → fail, improved is fail → pass; a score that moves while the verdict
 * stays is unchanged (see `score_delta`).
 */
export type Change = ItemComparison['change'];

/** GET …/evals/compare?runs=a,b → Comparison (the first run is the baseline) */
export type Comparison = Omit<Schemas['Comparison'], 'runs'> & { runs: Run[] };

/**
 * `data` of a `progress` event of an evaluation job (`unit: "items"`): events
 * carry free-form data, which the document does not describe.
 */
export interface ItemProgress {
  unit: 'items';
  run_id: string;
  done: number;
  total: number;
  passed: number;
  errors: number;
}

/* Traces. Times are ISO 8601 UTC to the microsecond. */

/** GET /projects/{slug}/traces → Page<'TraceSummary'> */
export type TraceSummary = Schemas['TraceSummary'];
export type TraceStatus = TraceSummary['status'];

/** The trace list's filters (its query without the paging), ANDed. */
export type TraceFilters = Omit<
  NonNullable<operations['get_traces_TraceListHandler']['parameters']['query']>,
  'limit' | 'cursor'
>;

export type TraceSpanEvent = Schemas['TraceSpanEvent'];
/** One stored span of GET /projects/{slug}/traces/{trace_id}. */
export type TraceSpan = Schemas['TraceSpan'];
export type SpanStatus = TraceSpan['status'];
export type SpanKind = TraceSpan['kind'];
export type SpanType = TraceSpan['span_type'];

/** GET /projects/{slug}/traces/{trace_id}?cursor=… → TraceDetail (spans in start order) */
export type TraceDetail = Schemas['TraceDetail'];

/** GET /projects/{slug}/sessions and …/users → Page<'GroupSummary'> */
export type GroupSummary = Schemas['GroupSummary'];

/** GET /projects/{slug}/metrics → Metrics; buckets without spans are absent */
export type Metrics = Schemas['Metrics'];
/** One bucket (and group); measures not asked for are null. */
export type MetricPoint = Schemas['MetricPoint'];
export type MetricsBucket = Metrics['bucket'];
export type MetricsGroupBy = NonNullable<Metrics['group_by']>;
/** The `measures` query parameter is a comma-separated string on the wire: its words. */
export type MetricsMeasure = 'count' | 'errors' | 'latency' | 'tokens' | 'cost';

/** `agiflow_lab/jobs/models.py` WorkerStatus (server admins only). */
export type WorkerStatus = Schemas['WorkerStatus'];
export type BusStatus = Schemas['BusStatus'];
/** GET /status?project=… → QueueStatus */
export type QueueStatus = Schemas['QueueStatus'];

/* Scores and spans to dataset items. */

/** GET /projects/{slug}/scores?trace_id=… → Page<'Score'>; POST …/scores → Score */
export type Score = Schemas['Score'];
export type ScoreType = Score['data_type'];
export type ScoreSource = Score['source'];
/** POST /projects/{slug}/scores: the value's JSON type decides the score's type. */
export type ScoreIn = Schemas['ScoreIn'];
export type SpanRef = Schemas['SpanRef'];

/** POST /projects/{slug}/datasets/{name}/from-spans → DatasetVersion (201) */
export type DatasetVersion = Schemas['DatasetVersion'];
/** GET /projects/{slug}/datasets → Page<'Dataset'> */
export type Dataset = Schemas['Dataset'];
