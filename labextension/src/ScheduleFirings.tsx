import { Button } from '@jupyterlab/ui-components';
import * as React from 'react';

import { ErrorNotice } from './ErrorNotice';
import { JobStateBadge } from './JobBadges';
import { fireTime, firingText } from './scheduleFormat';
import type { Firing, SchedulesApi } from './schedulesApi';
import { FINAL_JOB_STATES, type Page } from './types';
import { usePages } from './usePages';

export interface ScheduleFiringsProps {
  api: SchedulesApi;
  project: string;
  name: string;
  /** Changes when the schedule was fired or edited here: the history is fetched again. */
  refresh: unknown;
  /** Open the Jobs or the Evaluations view (where the started job or run is). */
  openView: (view: 'jobs' | 'evals') => void;
}

/** Refetch while a started job is not finished (or a firing waits): its state moves on. */
const FOLLOW_MS = 3000;

function unsettled(firing: Firing): boolean {
  return firing.outcome === 'queued' || (firing.job_state !== null && !FINAL_JOB_STATES.has(firing.job_state));
}

/** A schedule's firings, newest first: tick, how it went, and the job (and run) each started. */
export function ScheduleFirings({ api, project, name, refresh, openView }: ScheduleFiringsProps): JSX.Element {
  const [tick, setTick] = React.useState(0);
  const pages = usePages<Page<'Firing'>, Firing>(
    cursor => api.firings(project, name, cursor),
    [api, project, name],
    `${String(refresh)}:${tick}`
  );
  const follow = !pages.hasMore && pages.items.some(unsettled);
  React.useEffect(() => {
    if (!follow) {
      return;
    }
    const timer = window.setInterval(() => setTick(t => t + 1), FOLLOW_MS);
    return () => window.clearInterval(timer);
  }, [follow]);

  return (
    <div className="agiflow-schedule-firings" data-testid="agiflow-schedule-firings" data-schedule={name}>
      <h4 id={`agiflow-schedule-firings-${name}`}>Firings of {name}</h4>
      {pages.error !== undefined && <ErrorNotice message={pages.error} />}
      {pages.first === undefined && pages.error === undefined ? (
        <div className="agiflow-status">Loading firings…</div>
      ) : pages.items.length === 0 ? (
        <div className="agiflow-status">Not fired yet.</div>
      ) : (
        <table className="agiflow-table agiflow-manage-table" aria-labelledby={`agiflow-schedule-firings-${name}`}>
          <thead>
            <tr>
              <th scope="col">Tick</th>
              <th scope="col">Outcome</th>
              <th scope="col">Started</th>
              <th scope="col">Job / run</th>
            </tr>
          </thead>
          <tbody>
            {pages.items.map(f => (
              <tr
                key={f.id}
                data-testid="agiflow-schedule-firing"
                data-outcome={f.outcome}
                data-manual={String(f.manual)}
                data-job-id={f.job_id ?? ''}
              >
                <td title={f.tick}>{fireTime(f.tick)}</td>
                <td>
                  <span
                    className={`agiflow-chip agiflow-manage-chip agiflow-schedule-outcome-${f.outcome}`}
                    data-testid="agiflow-schedule-firing-outcome"
                  >
                    {firingText(f)}
                  </span>
                </td>
                <td title={f.started_at ?? f.fired_at}>{fireTime(f.started_at ?? f.fired_at)}</td>
                <td>
                  <span className="agiflow-manage-actions">
                    {f.job_id && <OpenInView what="job" id={f.job_id} onOpen={() => openView('jobs')} />}
                    {f.job_state && <JobStateBadge state={f.job_state} />}
                    {f.run_id && <OpenInView what="run" id={f.run_id} onOpen={() => openView('evals')} />}
                    {!f.job_id && !f.run_id && <span className="agiflow-muted">—</span>}
                  </span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pages.hasMore && (
        <Button small minimal disabled={pages.loading} onClick={pages.loadMore}>
          {pages.loading ? 'Loading…' : 'Older firings'}
        </Button>
      )}
    </div>
  );
}

const VIEW_OF = { job: 'Jobs', run: 'Evaluations' } as const;

/** A firing's job or run: its short id, a button that opens the view listing it. */
function OpenInView(props: { what: keyof typeof VIEW_OF; id: string; onOpen: () => void }): JSX.Element {
  const { what, id, onOpen } = props;
  const view = VIEW_OF[what];
  return (
    <Button
      small
      minimal
      data-testid={`agiflow-schedule-firing-${what}`}
      title={`${what === 'job' ? 'Job' : 'Run'} ${id}: open the ${view} view`}
      aria-label={`Open the ${view} view (${what} ${id})`}
      onClick={onOpen}
    >
      <code>
        {what} {id.slice(0, 8)}
      </code>
    </Button>
  );
}
