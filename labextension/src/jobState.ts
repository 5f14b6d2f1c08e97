/**
 * The jobs view's data: the project's jobs (newest first) and each job's log,
 * kept current by job events. Pure, so the rules are easy to follow:
 *
 * - an event at or before a job record's `updated_at` is already in the
 *   record (the server writes a state change and its event in one
 *   transaction) and changes nothing but the log;
 * - a newer state/progress event of the job's current attempt is applied at
 *   once; the caller then refetches the job for the rest (error, result…).
 */
import type { Job, JobEvent, JobState } from './types';

export interface LogChunk {
  id: number;
  attempt: number;
  stream: string;
  text: string;
}

export interface JobsData {
  jobs: Job[] | undefined;
  logs: Record<string, LogChunk[]>;
}

export type JobsAction =
  | { type: 'reset' }
  | { type: 'loaded'; jobs: Job[] }
  | { type: 'upsert'; job: Job }
  | { type: 'events'; events: JobEvent[] };

/** Chunks kept per job: the log view shows the tail of a long run. */
const MAX_LOG_CHUNKS = 2000;

export const EMPTY: JobsData = { jobs: undefined, logs: {} };

export function jobsReducer(data: JobsData, action: JobsAction): JobsData {
  switch (action.type) {
    case 'reset':
      return EMPTY;
    case 'loaded':
      return { ...data, jobs: sortNewestFirst(mergeAll(data.jobs ?? [], action.jobs)) };
    case 'upsert':
      return { ...data, jobs: sortNewestFirst(mergeAll(data.jobs ?? [], [action.job])) };
    case 'events':
      return applyEvents(data, action.events);
  }
}

/** Whether a state event says more than the job record it is compared with. */
export function isNewer(event: JobEvent, job: Job | undefined): boolean {
  return job === undefined || micros(event.at) > micros(job.updated_at ?? job.created_at);
}

function applyEvents(data: JobsData, events: JobEvent[]): JobsData {
  const logs = { ...data.logs };
  const byId = new Map((data.jobs ?? []).map(job => [job.id, job]));
  let changed = false;
  for (const event of events) {
    if (event.type === 'log') {
      const chunk: LogChunk = {
        id: event.id,
        attempt: event.attempt,
        stream: typeof event.data.stream === 'string' ? event.data.stream : 'stdout',
        text: typeof event.data.text === 'string' ? event.data.text : ''
      };
      const chunks = (logs[event.job_id] ?? []).concat(chunk);
      logs[event.job_id] = chunks.length > MAX_LOG_CHUNKS ? chunks.slice(-MAX_LOG_CHUNKS) : chunks;
      continue;
    }
    const job = byId.get(event.job_id);
    if (job === undefined || !isNewer(event, job) || event.attempt < job.attempts) {
      continue;
    }
    if (event.type === 'state' && typeof event.data.state === 'string') {
      byId.set(job.id, { ...job, state: event.data.state as JobState, attempts: event.attempt });
      changed = true;
    } else if (event.type === 'progress' && typeof event.data.done === 'number') {
      const total = typeof event.data.total === 'number' ? event.data.total : job.cells_total;
      byId.set(job.id, { ...job, cells_done: event.data.done, cells_total: total });
      changed = true;
    }
  }
  const jobs = changed && data.jobs ? data.jobs.map(job => byId.get(job.id) ?? job) : data.jobs;
  return { jobs, logs };
}

/** Add or replace jobs by id; an older copy never replaces a newer one. */
function mergeAll(current: Job[], incoming: Job[]): Job[] {
  const byId = new Map(current.map(job => [job.id, job]));
  for (const job of incoming) {
    const known = byId.get(job.id);
    if (!known || micros(job.updated_at ?? job.created_at) >= micros(known.updated_at ?? known.created_at)) {
      byId.set(job.id, job);
    }
  }
  return [...byId.values()];
}

function sortNewestFirst(jobs: Job[]): Job[] {
  return jobs.sort((a, b) => micros(b.created_at) - micros(a.created_at) || (a.id < b.id ? 1 : -1));
}

/**
 * Microseconds since the epoch of an ISO timestamp. `Date.parse` keeps only
 * milliseconds, too coarse to order events within one request.
 */
export function micros(iso: string): number {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(iso);
  if (!match) {
    return Date.parse(iso) * 1000;
  }
  const seconds = Date.parse(match[1] + (match[3] || 'Z'));
  const fraction = Number(((match[2] ?? '') + '000000').slice(0, 6));
  return seconds * 1000 + fraction;
}
