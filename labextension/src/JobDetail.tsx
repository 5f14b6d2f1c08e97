import * as React from 'react';

import { AgiflowApi } from './api';
import { ErrorNotice } from './ErrorNotice';
import type { LogChunk } from './jobState';
import { JobStateBadge, Progress } from './JobBadges';
import { FINAL_JOB_STATES, Job } from './types';
import { useAction } from './useAction';

export interface JobDetailProps {
  api: AgiflowApi;
  job: Job;
  log: LogChunk[];
  onChanged: (job: Job) => void;
  openPath: (path: string) => Promise<unknown>;
}

/** One job: its state, actions, error, result and live log. */
export function JobDetail({ api, job, log, onChanged, openPath }: JobDetailProps): JSX.Element {
  const { busy, error, act } = useAction(job.id);
  const final = FINAL_JOB_STATES.has(job.state);
  const canRetry = job.state === 'failed' || job.state === 'cancelled';
  const hasReport = job.state === 'succeeded' || job.state === 'failed';

  return (
    <div className="agiflow-prompt-detail agiflow-job-detail" data-testid="agiflow-job-detail" data-job-id={job.id}>
      <div className="agiflow-detail-header">
        <h2 className="agiflow-detail-title">{job.notebook}</h2>
        <JobStateBadge state={job.state} />
        <Progress job={job} />
      </div>
      <div className="agiflow-job-actions">
        <button
          type="button"
          className={`jp-mod-styled agiflow-job-cancel${final ? '' : ' jp-mod-warn'}`}
          disabled={final || busy !== null || job.cancel_requested === true}
          onClick={() => void act('cancel', async () => onChanged(await api.cancelJob(job.project, job.id)))}
        >
          {job.cancel_requested && !final ? 'Cancelling…' : 'Cancel'}
        </button>
        <button
          type="button"
          className="jp-mod-styled agiflow-job-retry"
          disabled={!canRetry || busy !== null}
          onClick={() => void act('retry', async () => onChanged(await api.retryJob(job.project, job.id)))}
        >
          Retry
        </button>
        <button
          type="button"
          className={`jp-mod-styled agiflow-job-open${hasReport ? ' jp-mod-accept' : ''}`}
          disabled={!hasReport || busy !== null}
          title="Copy the executed notebook into your files and open it"
          onClick={() =>
            void act('open', async () => {
              const { path } = await api.openJobNotebook(job.project, job.id);
              await openPath(path);
            })
          }
        >
          {busy === 'open' ? 'Opening…' : 'Open report'}
        </button>
      </div>
      {error !== undefined && <ErrorNotice message={error} />}
      <div className="agiflow-detail-body">
        <dl className="agiflow-meta">
          <dt>Job</dt>
          <dd className="agiflow-job-id">{job.id}</dd>
          <dt>Parameters</dt>
          <dd>
            <code>{JSON.stringify(job.parameters)}</code>
          </dd>
          <dt>Submitted</dt>
          <dd>
            {job.submitted_by} · {formatTime(job.created_at)}
          </dd>
          {job.started_at && (
            <>
              <dt>Started</dt>
              <dd>{formatTime(job.started_at)}</dd>
            </>
          )}
          {job.finished_at && (
            <>
              <dt>Finished</dt>
              <dd>{formatTime(job.finished_at)}</dd>
            </>
          )}
          <dt>Attempts</dt>
          <dd>
            {job.attempts}
            {job.max_attempts ? ` of ${job.max_attempts}` : ''}
            {job.worker_id ? ` · worker ${job.worker_id}` : ''}
          </dd>
        </dl>
        {job.error && (
          <>
            <h3>Error</h3>
            <div className="agiflow-job-error" data-testid="agiflow-job-error">
              <div className="agiflow-job-error-head">
                {job.error.ename}
                {job.error.evalue ? `: ${job.error.evalue}` : ''}
                {job.error.cell_index !== null ? ` (cell ${job.error.cell_index})` : ''}
              </div>
              {job.error.traceback.length > 0 && (
                <pre className="agiflow-code">{stripAnsi(job.error.traceback.join('\n'))}</pre>
              )}
            </div>
          </>
        )}
        {job.result !== undefined && job.result !== null && (
          <>
            <h3>Result</h3>
            <pre className="agiflow-code agiflow-job-result">{JSON.stringify(job.result, null, 2)}</pre>
          </>
        )}
        <h3>Log</h3>
        <JobLog log={log} final={final} />
      </div>
    </div>
  );
}

/** The job's output streams, following the tail while it runs. */
function JobLog({ log, final }: { log: LogChunk[]; final: boolean }): JSX.Element {
  const ref = React.useRef<HTMLPreElement>(null);
  React.useLayoutEffect(() => {
    const pre = ref.current;
    if (pre) {
      pre.scrollTop = pre.scrollHeight;
    }
  }, [log]);
  const parts: JSX.Element[] = [];
  let attempt: number | null = null;
  for (const chunk of log) {
    if (attempt !== null && chunk.attempt !== attempt) {
      parts.push(
        <span key={`a${chunk.id}`} className="agiflow-job-log-attempt">
          {`── attempt ${chunk.attempt} ──\n`}
        </span>
      );
    }
    attempt = chunk.attempt;
    parts.push(
      <span key={chunk.id} className={`agiflow-job-log-${chunk.stream}`}>
        {stripAnsi(chunk.text)}
      </span>
    );
  }
  return (
    <pre className="agiflow-code agiflow-job-log" data-testid="agiflow-job-log" ref={ref}>
      {parts.length > 0 ? (
        parts
      ) : (
        <span className="agiflow-muted">{final ? 'The notebook printed nothing.' : 'No output yet.'}</span>
      )}
    </pre>
  );
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

function formatTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}
