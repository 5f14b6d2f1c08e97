import * as React from 'react';

import type { AgiflowApi } from './api';
import { EvalCompare } from './EvalCompare';
import { EchoBadge, RunProgress, costTitle, formatCost, formatLatency, formatPercent, formatScore } from './EvalBadges';
import { ErrorNotice } from './ErrorNotice';
import { LiveStatus } from './LiveToolbar';
import { ManageFrame } from './ManageFrame';
import { canEdit as mayEdit, roleIn } from './manageRoles';
import { EvalRunDetail } from './EvalRunDetail';
import { EvalLaunchForm } from './EvalLaunchForm';
import type { TellWhenDone } from './completions';
import { JobStateBadge } from './JobBadges';
import { micros } from './jobState';
import type { Run } from './types';
import { runsSource, useLiveList } from './useLiveList';
import { useProjectChoice } from './useProjectChoice';

export interface EvalsViewProps {
  api: AgiflowApi;
  /** Opens a file of the Jupyter contents (the run's executed notebook). */
  openPath: (path: string) => Promise<unknown>;
  /** A run started here is announced when it ends (JupyterLab notification). */
  tellWhenDone?: TellWhenDone;
}

/**
 * The project's evaluation runs, newest first, kept live by the job-event
 * WebSocket: one list fetch, then a fetch of one run only when an event says
 * its state moved (or an unlisted run started scoring items). Item progress
 * updates the rows in place.
 */
export function EvalsView({ api, openPath, tellWhenDone }: EvalsViewProps): JSX.Element {
  const choice = useProjectChoice(api);
  const list = useLiveList(api, choice.project, runsSource);
  const [selected, setSelected] = React.useState<string | null>(null);
  const [checked, setChecked] = React.useState<string[]>([]);
  const [pane, setPane] = React.useState<'detail' | 'compare' | 'launch'>('detail');
  const [launchFrom, setLaunchFrom] = React.useState<Run | null>(null);

  const canEdit = mayEdit(roleIn(choice.projects.data?.items, choice.project));
  const setProject = choice.setProject;
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

  const runs = list.data.runs;
  const current = runs?.find(run => run.id === selected) ?? null;
  const pair = checked
    .map(id => runs?.find(run => run.id === id))
    .filter((run): run is Run => run !== undefined)
    // The older run is the baseline: "regressed" then means the newer run got worse.
    .sort((a, b) => micros(a.created_at) - micros(b.created_at));

  return (
    <ManageFrame
      api={api}
      title="AGIFlow Evaluations"
      className="agiflow-evals"
      testId="agiflow-evals"
      ownLayout
      choice={{
        ...choice,
        setProject: slug => {
          setSelected(null);
          setChecked([]);
          setProject(slug);
        }
      }}
      toolbar={<LiveStatus status={list.status} what="Job events" />}
      onReload={list.reload}
      filters={
        <>
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
        </>
      }
    >
      {({ project }) => (
        <div className="agiflow-body">
          <div className="agiflow-list-pane">
            {list.listError !== undefined ? (
              <ErrorNotice message={list.listError} onRetry={list.reload} />
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
                {list.moreError !== undefined && <ErrorNotice message={list.moreError} onRetry={list.loadMore} />}
                {list.hasMore && (
                  <button
                    type="button"
                    className="agiflow-link-button agiflow-more"
                    disabled={list.loadingMore}
                    onClick={list.loadMore}
                  >
                    {list.loadingMore ? 'Loading…' : 'Load older runs'}
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
                  list.upsert(run);
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
                onChanged={list.upsert}
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
      )}
    </ManageFrame>
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
