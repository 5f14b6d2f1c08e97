/** Whole API records for the tests, each field overridable: only what a test is about needs saying. */
import type { Job, JobEvent, MetricPoint, Run, RunAggregates } from '../src/types';

export function job(fields: Partial<Job> = {}): Job {
  return {
    id: 'job-1',
    project: 'default',
    notebook: 'builtin:hello',
    parameters: {},
    state: 'queued',
    idempotency_key: null,
    submitted_by: 'olivia',
    worker_id: null,
    attempts: 1,
    max_attempts: 3,
    timeout_seconds: 3600,
    cells_done: 0,
    cells_total: null,
    error: null,
    result: null,
    cancel_requested: false,
    created_at: '2026-03-01T12:00:00.000000Z',
    dispatched_at: null,
    started_at: null,
    finished_at: null,
    updated_at: '2026-03-01T12:00:00.000000Z',
    run_id: null,
    run_name: null,
    ...fields
  };
}

export function event(fields: Partial<JobEvent> & Pick<JobEvent, 'type' | 'at'>): JobEvent {
  return { id: 1, job_id: 'job-1', project: 'default', attempt: 1, data: {}, ...fields };
}

export function aggregates(fields: Partial<RunAggregates> = {}): RunAggregates {
  return {
    items_total: 10,
    items_done: 0,
    passed: 0,
    pass_rate: null,
    mean_score: null,
    errors: 0,
    evaluator_errors: 0,
    latency_p50_ms: null,
    latency_p95_ms: null,
    tokens_in: 0,
    tokens_out: 0,
    cost: null,
    unpriced_items: 0,
    evaluators: [],
    ...fields
  };
}

export function run(fields: Partial<Run> = {}): Run {
  return {
    id: 'run-1',
    project: 'default',
    name: 'nightly',
    state: 'queued',
    job_id: 'job-1',
    prompt: { name: 'greeting', version: 3, ref: 'label:production' },
    dataset: { name: 'questions', version: 2 },
    model: { connection: 'echo', kind: 'echo', model: 'echo', params: {}, builtin: true },
    evaluators: [{ name: 'exact', type: 'exact_match', threshold: 1 }],
    output_dataset: null,
    output_version: null,
    concurrency: 4,
    max_retries: 2,
    request_timeout: 60,
    created_by: 'olivia',
    created_at: '2026-03-01T12:00:00.000000Z',
    started_at: null,
    finished_at: null,
    error: null,
    aggregates: aggregates(),
    ...fields
  };
}

export function point(fields: Partial<MetricPoint> & Pick<MetricPoint, 'time'>): MetricPoint {
  return {
    group: {},
    count: null,
    errors: null,
    error_rate: null,
    latency_p50_ms: null,
    latency_p95_ms: null,
    latency_p99_ms: null,
    tokens_in: null,
    tokens_out: null,
    cost_usd: null,
    unpriced_count: null,
    score_means: null,
    ...fields
  };
}
