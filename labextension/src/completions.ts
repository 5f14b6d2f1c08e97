import { Notification } from '@jupyterlab/apputils';

import type { AgiflowApi } from './api';
import { JobEventSocket } from './events';
import { FINAL_JOB_STATES, type JobState } from './types';

interface Watched {
  /** What the user is told finished, e.g. "Job builtin:hello" or "Evaluation qa v2". */
  label: string;
  open: () => void;
}

/**
 * Tells the user, through JupyterLab's notifications, when a job or an evaluation run they started here
 * ends, with a button to its result. One job-events socket per project while something there is watched,
 * following from `latest`, closed when the last watched job ends.
 */
export class CompletionWatcher {
  private readonly sockets = new Map<string, { socket: JobEventSocket; jobs: Map<string, Watched> }>();

  constructor(private readonly api: AgiflowApi) {}

  /** Watch job `jobId` (an evaluation run: its job) of `project`. */
  watch(project: string, jobId: string, watched: Watched): void {
    let entry = this.sockets.get(project);
    if (!entry) {
      const jobs = new Map<string, Watched>();
      const socket = new JobEventSocket(this.api, project, {
        after: 'latest',
        onEvents: events => {
          for (const event of events) {
            const state = event.data['state'];
            const job = jobs.get(event.job_id);
            if (event.type === 'state' && job && FINAL_JOB_STATES.has(state as JobState)) {
              this.tell(job, state as JobState);
              jobs.delete(event.job_id);
            }
          }
          if (jobs.size === 0) {
            this.sockets.get(project)?.socket.dispose();
            this.sockets.delete(project);
          }
        }
      });
      entry = { socket, jobs };
      this.sockets.set(project, entry);
    }
    entry.jobs.set(jobId, watched);
  }

  private tell(job: Watched, state: JobState): void {
    const options = {
      autoClose: state === 'succeeded' ? 8000 : (false as const),
      actions: [{ label: 'Open', callback: job.open }]
    };
    if (state === 'succeeded') {
      Notification.success(`${job.label} finished`, options);
    } else if (state === 'failed') {
      Notification.error(`${job.label} failed`, options);
    } else {
      Notification.warning(`${job.label} was cancelled`, options);
    }
  }
}

/** Report the end of a job the user just started: `view` is where its result is. */
export type TellWhenDone = (project: string, jobId: string, label: string, view: 'jobs' | 'evals') => void;
