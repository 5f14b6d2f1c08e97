import * as React from 'react';

import type { Job } from './types';

/** The job's state as a coloured chip; its text is the state. */
export function JobStateBadge({ state }: { state: string }): JSX.Element {
  return (
    <span className={`agiflow-chip agiflow-job-state agiflow-job-state-${state}`} data-state={state}>
      {state}
    </span>
  );
}

export function Progress({ job }: { job: Job }): JSX.Element {
  const total = job.cells_total;
  const ratio = total ? Math.min(1, job.cells_done / total) : 0;
  return (
    <span className="agiflow-job-progress" title="cells done / cells">
      <span className="agiflow-job-progress-bar">
        <span style={{ width: `${Math.round(ratio * 100)}%` }} />
      </span>
      <span className="agiflow-job-progress-text">
        {job.cells_done}/{total ?? '?'}
      </span>
    </span>
  );
}
