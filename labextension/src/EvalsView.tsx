import * as React from 'react';

import { AgiflowApi, errorMessage } from './api';
import { EvalCompare } from './EvalCompare';
import { EchoBadge, RunProgress, costTitle, formatCost, formatLatency, formatPercent, formatScore } from './EvalBadges';
import { ErrorNotice } from './ErrorNotice';
import { LiveToolbar } from './LiveToolbar';
import { EvalRunDetail } from './EvalRunDetail';
import { EvalLaunchForm } from './EvalLaunchForm';
import type { TellWhenDone } from './completions';
import { EMPTY_RUNS, isNews, itemProgress, runMicros, runsReducer } from './evalState';
import { JobEventSocket, SocketStatus } from './events';
import { JobStateBadge } from './JobBadges';
import { micros } from './jobState';
import type { JobEvent, Run } from './types';
import { useProjectChoice } from './useProjectChoice';
import { ProjectSelect } from './ProjectSelect';

export interface EvalsViewProps {
  api: AgiflowApi;
  /** Opens a file of the Jupyter contents (the run's executed notebook). */
  openPath: (path: string) => Promise<unknown>;
  /** A run started here is announced when it ends (JupyterLab notification). */
  tellWhenDone?: TellWhenDone;
}

const PAGE_SIZE = 50;
/** State events of jobs not (yet) listed, remembered to catch a run that is being fetched. */
const MAX_UNMATCHED = 1000;

/**
 * The project's evaluation runs, newest first, kept live by the job-event
 * WebSocket: one list fetch, then a fetch of one run only when an event says
 * its state moved (or an unlisted run started scoring items). Item progress
 * updates the rows in place.
 */
export function EvalsView({ api, openPath, tellWhenDone }: EvalsViewProps): JSX.Element {
  const { projects, project, setProject } = useProjectChoice(api);
  const items = projects.data?.items;
  const [generation, setGeneration] = React.useState(0);
  const [data, dispatch] = React.useReducer(runsReducer, EMPTY_RUNS);
  const [listError, setListError] = React.useState<string | undefined>();
  const [moreError, setMoreError] = React.useState<string | undefined>();
  const [loadingMore, setLoadingMore] = React.useState(false);
  const [status, setStatus] = React.useState<SocketStatus>('closed');
  const [selected, setSelected] = React.useState<string | null>(null);
  const [checked, setChecked] = React.useState<string[]>([]);
  const [pane, setPane] = React.useState<'detail' | 'compare' | 'launch'>('detail');
  const [launchFrom, setLaunchFrom] = React.useState<Run | null>(null);

  // job id → the newest record of its run fetched for this list: what tells events that are
  // news from ones already in it (see evalState.ts). Replaced when the list is read again.
  const knownRef = React.useRef(new Map<string, Run>());

  React.useEffect(() => {
    if (project === null) {
      return;
    }
    let live = true;
    let socket: JobEventSocket | null = null;
    const fetching = new Map<string, boolean>(); // run id → fetch again when done
    const unmatched = new Map<string, number>(); // job id → its newest state event (µs)
    let horizon = 0; // µs: an unlisted run's events before this are history, not new runs
    const known = new Map<string, Run>();
    knownRef.current = known;
    dispatch({ type: 'reset' });
    setListError(undefined);
    setMoreError(undefined);

    const refetch = (id: string): void => {
      if (fetching.has(id)) {
        fetching.set(id, true);
        return;
      }
      fetching.set(id, false);
      api
        .getRun(project, id)
        .then(run => {
          if (!live) {
            return;
          }
          known.set(run.job_id, run);
          dispatch({ type: 'upsert', run });
          // Its job moved on while we asked (a run found by its progress): ask once more.
          const seen = unmatched.get(run.job_id);
          unmatched.delete(run.job_id);
          if (seen !== undefined && seen > runMicros(run)) {
            fetching.set(id, true);
          }
        })
        .catch(() => undefined) // a run of another project or gone: nothing to show
        .finally(() => {
          const again = fetching.get(id);
          fetching.delete(id);
          if (again && live) {
            refetch(id);
          }
        });
    };

    const onEvents = (events: JobEvent[]): void => {
      if (!live) {
        return;
      }
      const stale = new Set<string>();
      const found = new Set<string>();
      for (const event of events) {
        const run = known.get(event.job_id);
        if (run !== undefined) {
          if (event.type === 'state' && isNews(event, run)) {
            stale.add(run.id);
          }
          continue;
        }
        if (micros(event.at) <= horizon) {
          continue; // replayed history of a job that is not a listed run
        }
        const progress = itemProgress(event);
        if (progress !== null) {
          found.add(progress.run_id); // a run started after the list was read
        } else if (event.type === 'state') {
          unmatched.delete(event.job_id);
          unmatched.set(event.job_id, micros(event.at));
          if (unmatched.size > MAX_UNMATCHED) {
            unmatched.delete(unmatched.keys().next().value as string);
          }
        }
      }
      dispatch({ type: 'events', events });
      stale.forEach(refetch);
      found.forEach(id => fetching.has(id) || refetch(id));
    };

    api.listRuns(project, { limit: PAGE_SIZE }).then(
      page => {
        if (!live) {
          return;
        }
        horizon = page.items.length > 0 ? micros(page.items[0].created_at) : 0;
        page.items.forEach(run => known.set(run.job_id, run));
        dispatch({ type: 'loaded', page });
        // Replays the project's events since the start (the listed runs' news), then live.
        socket = new JobEventSocket(api, project, {
          onEvents,
          onStatus: s => live && setStatus(s)
        });
      },
      (reason: unknown) => live && setListError(errorMessage(reason))
    );
    return () => {
      live = false;
      socket?.dispose();
    };
  }, [api, project, generation]);

  const upsert = React.useCallback((run: Run) => dispatch({ type: 'upsert', run }), []);
  const role = items?.find(p => p.slug === project)?.role ?? null;
  const canEdit = role === 'owner' || role === 'editor';
  const loadMore = (): void => {
    if (project === null || data.nextCursor === null) {
      return;
    }
    const known = knownRef.current;
    const current = (): boolean => knownRef.current === known; // still the same list
    setLoadingMore(true);
    setMoreError(undefined);
    api
      .listRuns(project, { limit: PAGE_SIZE, cursor: data.nextCursor })
      .then(
        page => {
          if (current()) {
            page.items.forEach(run => known.has(run.job_id) || known.set(run.job_id, run));
            dispatch({ type: 'more', page });
          }
        },
        (reason: unknown) => current() && setMoreError(errorMessage(reason))
      )
      .finally(() => setLoadingMore(false));
  };
  const toggle = (id: string, on: boolean): void => {
    // Two runs at most: checking a third lets go of the one checked first.
    const next = on
      ? checked
          .filter(c => c !== id)
          .concat(id)
          .slice(-2)
      : checked.filter(c => c !== id);
    setChecked(next);
    if (on && next.length === 2) {
      setPane('compare');
    }
  };

  const runs = data.runs;
  const current = runs?.find(run => run.id === selected) ?? null;
  const pair = checked
    .map(id => runs?.find(run => run.id === id))
    .filter((run): run is Run => run !== undefined)
    // The older run is the baseline: "regressed" then means the newer run got worse.
    .sort((a, b) => micros(a.created_at) - micros(b.created_at));

  return (
    <div className="agiflow-browser agiflow-evals" data-testid="agiflow-evals">
      <LiveToolbar
        title="AGIFlow Evaluations"
        status={status}
        onReload={() => {
          projects.reload();
          setGeneration(g => g + 1);
        }}
      />
      {projects.error !== undefined ? (
        <ErrorNotice message={projects.error} onRetry={projects.reload} />
      ) : items === undefined ? (
        <div className="agiflow-status">Loading projects…</div>
      ) : items.length === 0 || project === null ? (
        <div className="agiflow-status">No projects yet.</div>
      ) : (
        <>
          <div className="agiflow-filters">
            <ProjectSelect
              projects={items}
              project={project}
              onChange={slug => {
                setSelected(null);
                setChecked([]);
                setProject(slug);
              }}
            />
            {canEdit && (
              <button
                type="button"
                className="jp-mod-styled jp-mod-accept agiflow-new-button"
                data-testid="agiflow-new-run"
                onClick={() => {
                  setLaunchFrom(null);
                  setPane('launch');
                }}
              >
                New run
              </button>
            )}
            <span className="agiflow-compare-hint agiflow-muted" data-testid="agiflow-compare-hint">
              {pair.length === 2 ? (
                <>
                  <button
                    type="button"
                    className="agiflow-link-button"
                    data-testid="agiflow-compare-open"
                    onClick={() => setPane('compare')}
                  >
                    Compare 2 runs
                  </button>
                  <button type="button" className="agiflow-link-button" onClick={() => setChecked([])}>
                    Clear
                  </button>
                </>
              ) : (
                'Tick two runs to compare them'
              )}
            </span>
          </div>
          <div className="agiflow-body">
            <div className="agiflow-list-pane">
              {listError !== undefined ? (
                <ErrorNotice message={listError} onRetry={() => setGeneration(g => g + 1)} />
              ) : runs === undefined ? (
                <div className="agiflow-status">Loading runs…</div>
              ) : runs.length === 0 ? (
                <div className="agiflow-status">
                  No evaluation runs in this project yet: start one with <code>client.evals.run(…)</code>, the{' '}
                  <code>agiflow-lab eval run</code> command or <code>POST …/evals/runs</code>.
                </div>
              ) : (
                <>
                  <RunList
                    runs={runs}
                    selected={pane === 'detail' ? selected : null}
                    checked={checked}
                    onSelect={id => {
                      setSelected(id);
                      setPane('detail');
                    }}
                    onCheck={toggle}
                  />
                  {moreError !== undefined && <ErrorNotice message={moreError} onRetry={loadMore} />}
                  {data.nextCursor !== null && (
                    <button
                      type="button"
                      className="agiflow-link-button agiflow-more"
                      disabled={loadingMore}
                      onClick={loadMore}
                    >
                      {loadingMore ? 'Loading…' : 'Load older runs'}
                    </button>
                  )}
                </>
              )}
            </div>
            <div className="agiflow-detail-pane">
              {pane === 'launch' ? (
                <EvalLaunchForm
                  key={launchFrom?.id ?? 'new'}
                  api={api}
                  project={project}
                  from={launchFrom}
                  onStarted={run => {
                    tellWhenDone?.(run.project, run.job_id, `Evaluation ${run.name}`, 'evals');
                    upsert(run);
                    setSelected(run.id);
                    setPane('detail');
                  }}
                  onCancel={() => setPane('detail')}
                />
              ) : pane === 'compare' && pair.length === 2 ? (
                <EvalCompare
                  api={api}
                  project={project}
                  baseline={pair[0]}
                  other={pair[1]}
                  onClose={() => setPane('detail')}
                />
              ) : current ? (
                <EvalRunDetail
                  api={api}
                  run={current}
                  onChanged={upsert}
                  openPath={openPath}
                  onRerun={
                    canEdit
                      ? run => {
                          setLaunchFrom(run);
                          setPane('launch');
                        }
                      : undefined
                  }
                />
              ) : (
                <div className="agiflow-status">Select a run to see its evaluators and items.</div>
              )}
            </div>
          </div>
        </>
      )}
    </div>
  );
}

interface RunListProps {
  runs: Run[];
  selected: string | null;
  checked: string[];
  onSelect: (id: string) => void;
  onCheck: (id: string, on: boolean) => void;
}

function RunList({ runs, selected, checked, onSelect, onCheck }: RunListProps): JSX.Element {
  return (
    <ul className="agiflow-prompt-list agiflow-run-list" data-testid="agiflow-run-list">
      {runs.map(run => (
        <li
          key={run.id}
          className="agiflow-run-row"
          data-testid="agiflow-run-item"
          data-run-id={run.id}
          data-state={run.state}
        >
          <input
            type="checkbox"
            className="agiflow-run-check"
            data-testid="agiflow-run-check"
            title="Compare this run"
            aria-label={`Compare ${run.name}`}
            checked={checked.includes(run.id)}
            onChange={event => onCheck(run.id, event.target.checked)}
          />
          <button
            type="button"
            className={'agiflow-prompt-item agiflow-run-item' + (run.id === selected ? ' agiflow-mod-selected' : '')}
            aria-current={run.id === selected ? 'true' : undefined}
            onClick={() => onSelect(run.id)}
          >
            <span className="agiflow-prompt-item-head">
              <span className="agiflow-prompt-name agiflow-run-name">{run.name}</span>
              <JobStateBadge state={run.state} />
              <EchoBadge run={run} />
            </span>
            <span className="agiflow-prompt-item-meta agiflow-muted">
              <RunProgress aggregates={run.aggregates} />
              <span title={run.created_at}>{new Date(run.created_at).toLocaleString()}</span>
            </span>
            <RunMetrics run={run} />
          </button>
        </li>
      ))}
    </ul>
  );
}

/** The headline numbers of a run, labelled, one line. */
function RunMetrics({ run }: { run: Run }): JSX.Element {
  const a = run.aggregates;
  return (
    <span className="agiflow-run-metrics">
      <Metric name="pass" value={formatPercent(a.pass_rate)} className="agiflow-run-pass-rate" />
      <Metric name="score" value={formatScore(a.mean_score)} className="agiflow-run-mean-score" />
      <Metric name="errors" value={String(a.errors)} className="agiflow-run-errors" />
      <Metric
        name="p50/p95"
        value={`${formatLatency(a.latency_p50_ms)} / ${formatLatency(a.latency_p95_ms)}`}
        className="agiflow-run-latency"
      />
      <Metric name="cost" value={formatCost(a)} className="agiflow-run-cost" title={costTitle(a)} />
    </span>
  );
}

interface MetricProps {
  name: string;
  value: string;
  className: string;
  title?: string;
}

function Metric({ name, value, className, title }: MetricProps): JSX.Element {
  return (
    <span className={`agiflow-metric ${className}`} title={title}>
      <span className="agiflow-metric-name">{name}</span>
      <span className="agiflow-metric-value">{value}</span>
    </span>
  );
}
