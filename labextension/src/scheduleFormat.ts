/** How a schedule and its firings read in the Schedules view, and where a 422 puts its messages: pure, unit-tested. */
import { AgiflowApiError } from './api';
import type { Firing, Schedule } from './schedulesApi';

const UNITS: [number, string][] = [
  [86_400, 'd'],
  [3_600, 'h'],
  [60, 'min'],
  [1, 's']
];

/** `90` → `1 min 30 s`, `7200` → `2 h`: whole units, largest first. */
export function durationText(seconds: number): string {
  const parts: string[] = [];
  let rest = Math.max(0, Math.round(seconds));
  for (const [size, unit] of UNITS) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${unit}`);
      rest %= size;
    }
  }
  return parts.length ? parts.join(' ') : '0 s';
}

/** When it fires: `every 5 min`, or `cron 0 3 * * * (Europe/Berlin)`. */
export function timingText(schedule: Pick<Schedule, 'cron' | 'timezone' | 'interval_seconds'>): string {
  if (schedule.cron !== null) {
    return `cron ${schedule.cron} (${schedule.timezone})`;
  }
  return schedule.interval_seconds !== null ? `every ${durationText(schedule.interval_seconds)}` : '—';
}

/** What it runs: the job's notebook, or the evaluation's prompt, dataset and model. */
export function targetText(schedule: Pick<Schedule, 'target' | 'job' | 'eval'>): string {
  if (schedule.target === 'job') {
    return `Notebook job: ${schedule.job?.notebook ?? '?'}`;
  }
  const run = schedule.eval;
  if (!run) {
    return 'Evaluation run';
  }
  const prompt = run.prompt.version
    ? `${run.prompt.name} v${run.prompt.version}`
    : `${run.prompt.name}@${run.prompt.label ?? 'production'}`;
  const dataset = run.dataset.version ? `${run.dataset.name} v${run.dataset.version}` : `${run.dataset.name} (latest)`;
  return `Evaluation run: ${prompt} × ${dataset} on ${run.model.connection}`;
}

/** An evaluation schedule's gate: `announced below 80% pass rate`; nothing without one. */
export function gateText(gate: number | null): string {
  return gate === null ? '' : `announced below ${Math.round(gate * 1000) / 10}% pass rate`;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** `2026-11-30 10:03:07` in the user's time zone (ticks of a short interval differ by seconds). */
export function fireTime(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const d = new Date(iso);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** `in 4 min 10 s` / `12 s ago` / `now`, to the second. */
export function relativeTime(iso: string, now: number): string {
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  if (seconds === 0) {
    return 'now';
  }
  return seconds > 0 ? `in ${durationText(seconds)}` : `${durationText(-seconds)} ago`;
}

/** A firing in a few words: `run now: started`, `tick: skipped (previous still running)`. */
export function firingText(firing: Pick<Firing, 'manual' | 'outcome' | 'reason'>): string {
  const how = firing.manual ? 'run now' : 'tick';
  return `${how}: ${firing.outcome}${firing.reason ? ` (${firing.reason})` : ''}`;
}

/** The form fields a 422 can name, as the Schedules form shows them. */
export type ScheduleField =
  | 'name'
  | 'description'
  | 'cron'
  | 'timezone'
  | 'interval_seconds'
  | 'start_at'
  | 'notebook'
  | 'parameters'
  | 'timeout_seconds'
  | 'eval'
  | 'missed'
  | 'max_catch_up'
  | 'misfire_grace_seconds'
  | 'overlap'
  | 'pass_rate_gate'
  | 'target';

const TOP_LEVEL: ReadonlySet<string> = new Set([
  'name',
  'description',
  'cron',
  'timezone',
  'interval_seconds',
  'start_at',
  'missed',
  'max_catch_up',
  'misfire_grace_seconds',
  'overlap',
  'pass_rate_gate'
]);

/** The form field an API field path (`cron`, `job.notebook`, `eval.prompt.name`) belongs to, if any. */
export function formField(path: string): ScheduleField | null {
  const [head, next] = path.split('.');
  if (TOP_LEVEL.has(head)) {
    return head as ScheduleField;
  }
  if (head === 'job') {
    if (next === 'notebook' || next === 'parameters' || next === 'timeout_seconds') {
      return next;
    }
    return next === undefined ? 'target' : 'notebook';
  }
  return head === 'eval' ? 'eval' : null;
}

/**
 * The field messages of a refused write (`details.errors[]` of a 422, or the one `details.field` of other
 * refusals), keyed by form field, the first message of each; pydantic's "Value error, " prefix dropped.
 * Errors naming no form field are left to the general notice.
 */
export function fieldErrors(reason: unknown): Partial<Record<ScheduleField, string>> {
  if (!(reason instanceof AgiflowApiError) || typeof reason.details !== 'object' || reason.details === null) {
    return {};
  }
  const details = reason.details as { field?: unknown; errors?: unknown };
  const listed: { field: string; message: string }[] = Array.isArray(details.errors)
    ? (details.errors as { field?: unknown; message?: unknown }[])
        .filter(e => typeof e.field === 'string' && typeof e.message === 'string')
        .map(e => ({ field: e.field as string, message: e.message as string }))
    : typeof details.field === 'string'
      ? [{ field: details.field, message: reason.message }]
      : [];
  const found: Partial<Record<ScheduleField, string>> = {};
  for (const { field, message } of listed) {
    const key = formField(field);
    if (key !== null && found[key] === undefined) {
      found[key] = message.replace(/^Value error, /, '');
    }
  }
  return found;
}
