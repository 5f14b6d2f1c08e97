/**
 * The evaluations view's data: the project's runs (newest first), kept
 * current by job events. Pure, so the rules are easy to follow:
 *
 * - a run has no `updated_at`, but the server writes each state change of its
 *   job with the matching timestamp (`created_at`, `started_at`,
 *   `finished_at`) in the same transaction as the event: an event at or before
 *   the run's newest timestamp is already in the record (see `isNews`);
 * - a newer state event is applied at once, and the caller refetches the run
 *   for the rest (aggregates, error…);
 * - an item-progress event (`unit: "items"`) updates the run's counts, and only
 *   forwards: a replayed, older one never moves progress back.
 */
import { micros } from './jobState';
import type { ItemProgress, JobEvent, JobState, Run, RunPage } from './types';

export interface RunsData {
  /** undefined until the first page arrived */
  runs: Run[] | undefined;
  /** cursor of the next (older) page of the list; null when all are shown */
  nextCursor: string | null;
}

export type RunsAction =
  | { type: 'reset' }
  | { type: 'loaded'; page: RunPage }
  | { type: 'more'; page: RunPage }
  | { type: 'upsert'; run: Run }
  | { type: 'events'; events: JobEvent[] };

export const EMPTY_RUNS: RunsData = { runs: undefined, nextCursor: null };

export function runsReducer(data: RunsData, action: RunsAction): RunsData {
  switch (action.type) {
    case 'reset':
      return EMPTY_RUNS;
    case 'loaded':
      return { runs: sortNewestFirst(merge([], action.page.items)), nextCursor: action.page.next_cursor ?? null };
    case 'more': {
      // An older page never replaces a run already shown (it may be fresher, kept by events).
      const shown = new Set((data.runs ?? []).map(run => run.id));
      const added = action.page.items.filter(run => !shown.has(run.id));
      return {
        runs: sortNewestFirst(merge(data.runs ?? [], added)),
        nextCursor: action.page.next_cursor ?? null
      };
    }
    case 'upsert':
      return { ...data, runs: sortNewestFirst(merge(data.runs ?? [], [action.run])) };
    case 'events':
      return applyEvents(data, action.events);
  }
}

/** The time of the newest state change a run record already reflects. */
export function runMicros(run: Run): number {
  return micros(run.finished_at ?? run.started_at ?? run.created_at);
}

/** Whether an event of the run's job says more than the run record. */
export function isNews(event: JobEvent, run: Run): boolean {
  return micros(event.at) > runMicros(run);
}

/** The item counts of an evaluation job's progress event (cell progress is not). */
export function itemProgress(event: JobEvent): ItemProgress | null {
  const d = event.data;
  if (
    event.type !== 'progress' ||
    d.unit !== 'items' ||
    typeof d.run_id !== 'string' ||
    typeof d.done !== 'number' ||
    typeof d.total !== 'number'
  ) {
    return null;
  }
  return {
    unit: 'items',
    run_id: d.run_id,
    done: d.done,
    total: d.total,
    passed: typeof d.passed === 'number' ? d.passed : 0,
    errors: typeof d.errors === 'number' ? d.errors : 0
  };
}

function applyEvents(data: RunsData, events: JobEvent[]): RunsData {
  if (!data.runs) {
    return data;
  }
  const byJob = new Map(data.runs.map(run => [run.job_id, run]));
  let changed = false;
  for (const event of events) {
    const run = byJob.get(event.job_id);
    if (run === undefined) {
      continue;
    }
    const progress = itemProgress(event);
    if (progress !== null && progress.done > run.aggregates.items_done) {
      byJob.set(run.job_id, withProgress(run, progress));
      changed = true;
    } else if (event.type === 'state' && typeof event.data.state === 'string' && isNews(event, run)) {
      byJob.set(run.job_id, { ...run, state: event.data.state as JobState });
      changed = true;
    }
  }
  return changed ? { ...data, runs: data.runs.map(run => byJob.get(run.job_id) ?? run) } : data;
}

/** The counts a progress event carries; the rest of the aggregates wait for the refetch. */
function withProgress(run: Run, progress: ItemProgress): Run {
  const state: JobState = run.state === 'queued' || run.state === 'dispatched' ? 'running' : run.state;
  return {
    ...run,
    state,
    aggregates: {
      ...run.aggregates,
      items_done: progress.done,
      items_total: progress.total,
      passed: progress.passed,
      errors: progress.errors,
      pass_rate: progress.done ? progress.passed / progress.done : null
    }
  };
}

/** Add or replace runs by id (the caller serialises the fetches of one run). */
function merge(current: Run[], incoming: Run[]): Run[] {
  const byId = new Map(current.map(run => [run.id, run]));
  for (const run of incoming) {
    byId.set(run.id, run);
  }
  return [...byId.values()];
}

function sortNewestFirst(runs: Run[]): Run[] {
  return runs.sort((a, b) => micros(b.created_at) - micros(a.created_at) || (a.id < b.id ? 1 : -1));
}
