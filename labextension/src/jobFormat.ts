/** How a job reads in a list row: pure, so it is unit-tested. */
import type { Job } from './types';

/** What a row is about: an evaluation run by its name, else the notebook. */
export function jobTitle(job: Job): string {
  return job.run_id ? `Evaluation: ${job.run_name || job.run_id.slice(0, 8)}` : job.notebook;
}

/** `name="world", n=3` from a job's parameters, cut to fit a row. */
export function parameterSummary(parameters: Record<string, unknown>, limit = 80): string {
  const text = Object.entries(parameters)
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`)
    .join(', ');
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

/** Run time: finished − started, or still running since started; nothing before it starts. */
export function duration(job: Job, now: number): string {
  if (!job.started_at) {
    return '';
  }
  const end = job.finished_at ? Date.parse(job.finished_at) : now;
  const seconds = Math.max(0, (end - Date.parse(job.started_at)) / 1000);
  const text =
    seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return job.finished_at ? `took ${text}` : `running ${text}`;
}
