import * as React from 'react';

import { AgiflowApi, errorMessage } from './api';
import { ErrorNotice } from './ErrorNotice';
import { LiveStatus } from './LiveToolbar';
import { JobStateBadge, Progress } from './JobBadges';
import { JobDetail } from './JobDetail';
import type { TellWhenDone } from './completions';
import type { Job, JobState } from './types';
import { useNow } from './useNow';
import { duration, jobTitle, parameterSummary } from './jobFormat';
import { jobsSource, useLiveList } from './useLiveList';
import { useProjectChoice } from './useProjectChoice';
import { FilterSelect } from './FilterSelect';
import { ManageFrame } from './ManageFrame';

export interface JobsViewProps {
  api: AgiflowApi;
  /** Opens a file of the Jupyter contents (the executed notebook). */
  openPath: (path: string) => Promise<unknown>;
  /** A job submitted here is announced when it ends (JupyterLab notification). */
  tellWhenDone?: TellWhenDone;
}

export const NOTEBOOKS = ['builtin:hello', 'builtin:sleep'];

/**
 * The project's jobs, newest first, kept live by the job-event WebSocket: one
 * list fetch, then a refetch of a job only when an event says its state moved.
 */
export function JobsView({ api, openPath, tellWhenDone }: JobsViewProps): JSX.Element {
  const choice = useProjectChoice(api);
  const list = useLiveList(api, choice.project, jobsSource);
  const data = list.data;
  const [selected, setSelected] = React.useState<string | null>(null);
  const [stateFilter, setStateFilter] = React.useState<JobState | ''>('');
  const [search, setSearch] = React.useState('');
  // A failed older page shows like a failed list (a retry reads the list again), as it always has here.
  const listError = list.listError ?? list.moreError;

  const jobs = data.jobs?.filter(job => matches(job, stateFilter, search.trim().toLowerCase()));
  const current = jobs?.find(job => job.id === selected) ?? null;
  const setProject = choice.setProject;

  return (
    <ManageFrame
      api={api}
      title="AGIFlow Jobs"
      className="agiflow-jobs"
      testId="agiflow-jobs"
      ownLayout
      choice={{
        ...choice,
        setProject: slug => {
          setSelected(null);
          setProject(slug);
        }
      }}
      toolbar={<LiveStatus status={list.status} what="Job events" />}
      onReload={list.reload}
      filters={
        <>
          <FilterSelect
            label="State"
            testId="agiflow-job-state-filter"
            value={stateFilter}
            choices={[{ value: '', label: 'any' }, ...JOB_STATES.map(state => ({ value: state, label: state }))]}
            onChange={setStateFilter}
          />
          <label className="agiflow-field agiflow-field-text">
            <span>Search</span>
            <input
              type="search"
              className="agiflow-search-input"
              data-testid="agiflow-job-search"
              placeholder="notebook, parameter, run, who"
              value={search}
              onChange={event => setSearch(event.target.value)}
            />
          </label>
        </>
      }
    >
      {({ project }) => (
        <>
          <JobSubmitForm
            api={api}
            project={project}
            onSubmitted={job => {
              tellWhenDone?.(job.project, job.id, `Job ${job.notebook}`, 'jobs');
              list.upsert(job);
              setSelected(job.id);
            }}
          />
          <div className="agiflow-body">
            <div className="agiflow-list-pane">
              {listError !== undefined ? (
                <ErrorNotice message={listError} onRetry={list.reload} />
              ) : jobs === undefined ? (
                <div className="agiflow-status">Loading jobs…</div>
              ) : jobs.length === 0 ? (
                <div className="agiflow-status">
                  {data.jobs?.length
                    ? 'No loaded job matches the filters.'
                    : 'No jobs in this project yet: run one above.'}
                </div>
              ) : (
                <JobList jobs={jobs} selected={selected} onSelect={setSelected} />
              )}
              {list.hasMore && jobs !== undefined && (
                <button
                  type="button"
                  className="jp-mod-styled agiflow-more"
                  data-testid="agiflow-jobs-more"
                  onClick={list.loadMore}
                >
                  Load older jobs
                </button>
              )}
            </div>
            <div className="agiflow-detail-pane">
              {current ? (
                <JobDetail
                  api={api}
                  job={current}
                  log={data.logs[current.id] ?? []}
                  onChanged={list.upsert}
                  openPath={openPath}
                />
              ) : (
                <div className="agiflow-status">Select a job to see its log.</div>
              )}
            </div>
          </div>
        </>
      )}
    </ManageFrame>
  );
}

interface JobSubmitFormProps {
  api: AgiflowApi;
  project: string;
  onSubmitted: (job: Job) => void;
}

function JobSubmitForm({ api, project, onSubmitted }: JobSubmitFormProps): JSX.Element {
  const [notebook, setNotebook] = React.useState(NOTEBOOKS[0]);
  const [parameters, setParameters] = React.useState('{"name": "world"}');
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | undefined>();

  const submit = async (event: React.FormEvent): Promise<void> => {
    event.preventDefault();
    let parsed: unknown;
    try {
      parsed = parameters.trim() ? JSON.parse(parameters) : {};
    } catch (reason) {
      setError(`Parameters are not valid JSON: ${errorMessage(reason)}`);
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      setError('Parameters must be a JSON object, e.g. {"name": "world"}.');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      onSubmitted(
        await api.submitJob(project, {
          notebook,
          parameters: parsed as Record<string, unknown>
        })
      );
    } catch (reason) {
      setError(errorMessage(reason));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="agiflow-job-submit" data-testid="agiflow-job-submit" onSubmit={event => void submit(event)}>
      <label className="agiflow-field">
        <span>Notebook</span>
        <select
          className="agiflow-project-select agiflow-job-notebook"
          data-testid="agiflow-job-notebook"
          value={notebook}
          onChange={event => setNotebook(event.target.value)}
        >
          {NOTEBOOKS.map(name => (
            <option key={name} value={name}>
              {name}
            </option>
          ))}
        </select>
      </label>
      <label className="agiflow-field agiflow-job-parameters-field">
        <span>Parameters</span>
        <textarea
          className="agiflow-job-parameters"
          data-testid="agiflow-job-parameters"
          rows={2}
          spellCheck={false}
          value={parameters}
          onChange={event => setParameters(event.target.value)}
        />
      </label>
      <button
        type="submit"
        className="jp-mod-styled jp-mod-accept agiflow-job-run"
        data-testid="agiflow-job-run"
        disabled={busy}
      >
        {busy ? 'Submitting…' : 'Run'}
      </button>
      {error !== undefined && <ErrorNotice message={error} />}
    </form>
  );
}

interface JobListProps {
  jobs: Job[];
  selected: string | null;
  onSelect: (id: string) => void;
}

function JobList({ jobs, selected, onSelect }: JobListProps): JSX.Element {
  const now = useNow();
  return (
    <ul className="agiflow-prompt-list agiflow-job-list" data-testid="agiflow-job-list">
      {jobs.map(job => (
        <li key={job.id}>
          <button
            type="button"
            className={'agiflow-prompt-item agiflow-job-item' + (job.id === selected ? ' agiflow-mod-selected' : '')}
            data-testid="agiflow-job-item"
            data-job-id={job.id}
            aria-current={job.id === selected ? 'true' : undefined}
            onClick={() => onSelect(job.id)}
          >
            <span className="agiflow-prompt-item-head">
              <span className="agiflow-prompt-name">{jobTitle(job)}</span>
              <JobStateBadge state={job.state} />
            </span>
            {Object.keys(job.parameters).length > 0 && (
              <span
                className="agiflow-job-params"
                data-testid="agiflow-job-params"
                title={JSON.stringify(job.parameters, null, 2)}
              >
                {parameterSummary(job.parameters)}
              </span>
            )}
            <span className="agiflow-prompt-item-meta agiflow-muted">
              <Progress job={job} />
              <span title={`started ${job.started_at ?? '–'}, finished ${job.finished_at ?? '–'}`}>
                {duration(job, now)}
              </span>
              <span title="submitted by">{job.submitted_by}</span>
              <span title={job.created_at}>{timeAgo(job.created_at, now)}</span>
              {job.attempts > 1 && <span>attempt {job.attempts}</span>}
              <span className="agiflow-job-id">{job.id.slice(0, 8)}</span>
            </span>
          </button>
        </li>
      ))}
    </ul>
  );
}

const JOB_STATES: JobState[] = ['queued', 'dispatched', 'running', 'retrying', 'succeeded', 'failed', 'cancelled'];

function matches(job: Job, state: JobState | '', search: string): boolean {
  if (state && job.state !== state) {
    return false;
  }
  if (!search) {
    return true;
  }
  const haystack = [job.notebook, job.run_name ?? '', job.submitted_by, job.id, JSON.stringify(job.parameters)];
  return haystack.some(text => text.toLowerCase().includes(search));
}

function timeAgo(iso: string, now: number): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) {
    return `${seconds}s ago`;
  }
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)}m ago`;
  }
  if (seconds < 86400) {
    return `${Math.floor(seconds / 3600)}h ago`;
  }
  return new Date(iso).toLocaleDateString();
}
