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
