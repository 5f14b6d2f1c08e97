import * as React from 'react';

import { AgiflowApi } from './api';
import {
  EchoBadge,
  PassChip,
  RunProgress,
  asText,
  costTitle,
  formatCost,
  formatLatency,
  formatPercent,
  formatScore,
  formatTime
} from './EvalBadges';
import { ErrorNotice } from './ErrorNotice';
import { JobStateBadge } from './JobBadges';
import { FINAL_JOB_STATES, ItemResult, Page, Run } from './types';
import { usePages } from './usePages';
import { useAction } from './useAction';

export interface EvalRunDetailProps {
  api: AgiflowApi;
  run: Run;
  onChanged: (run: Run) => void;
  openPath: (path: string) => Promise<unknown>;
  /** Opens the launch form filled from this run (editors only: absent for viewers). */
  onRerun?: (run: Run) => void;
}

const RESULTS_PAGE = 50;

/** One run: what it pinned, its per-evaluator aggregates and its items. */
export function EvalRunDetail({ api, run, onChanged, openPath, onRerun }: EvalRunDetailProps): JSX.Element {
  const { busy, error, act } = useAction(run.id);
  const final = FINAL_JOB_STATES.has(run.state);
  const hasReport = run.state === 'succeeded' || run.state === 'failed';
  const a = run.aggregates;

  return (
    <div className="agiflow-prompt-detail agiflow-run-detail" data-testid="agiflow-run-detail" data-run-id={run.id}>
      <div className="agiflow-detail-header">
        <h2 className="agiflow-detail-title">{run.name}</h2>
        <JobStateBadge state={run.state} />
        <EchoBadge run={run} />
        <RunProgress aggregates={a} />
      </div>
      <div className="agiflow-job-actions">
        <button
          type="button"
          className={`jp-mod-styled agiflow-run-cancel${final ? '' : ' jp-mod-warn'}`}
          data-testid="agiflow-run-cancel"
          disabled={final || busy !== null}
          onClick={() => void act('cancel', async () => onChanged(await api.cancelRun(run.project, run.id)))}
        >
          {busy === 'cancel' ? 'Cancelling…' : 'Cancel'}
        </button>
        <button
          type="button"
          className={`jp-mod-styled agiflow-run-open${hasReport ? ' jp-mod-accept' : ''}`}
          data-testid="agiflow-run-open"
          disabled={!hasReport || busy !== null}
          title="Copy the run's executed notebook (its report) into your files and open it"
          onClick={() =>
            void act('open', async () => {
              const { path } = await api.openJobNotebook(run.project, run.job_id);
              await openPath(path);
            })
          }
        >
          {busy === 'open' ? 'Opening…' : 'Open report'}
        </button>
        {onRerun && (
          <button
            type="button"
            className="jp-mod-styled"
            data-testid="agiflow-run-rerun"
            title="The launch form, filled from this run: change one thing and start"
            onClick={() => onRerun(run)}
          >
            Re-run…
          </button>
        )}
      </div>
      {error !== undefined && <ErrorNotice message={error} />}
      <div className="agiflow-detail-body">
        <dl className="agiflow-meta agiflow-run-pinned" data-testid="agiflow-run-pinned">
          <dt>Prompt</dt>
          <dd>
            <span className="agiflow-run-prompt">
              {run.prompt.name} v{run.prompt.version}
            </span>{' '}
            <span className="agiflow-muted">({run.prompt.ref})</span>
          </dd>
          <dt>Dataset</dt>
          <dd className="agiflow-run-dataset">
            {run.dataset.name} v{run.dataset.version}
          </dd>
          <dt>Model</dt>
          <dd className="agiflow-run-model">
            {run.model.connection} · {run.model.model} <EchoBadge run={run} />
            {Object.keys(run.model.params).length > 0 && (
              <>
                {' '}
                <code>{JSON.stringify(run.model.params)}</code>
              </>
            )}
          </dd>
          <dt>Run</dt>
          <dd className="agiflow-job-id">{run.id}</dd>
          <dt>Submitted</dt>
          <dd>
            {run.created_by} · {formatTime(run.created_at)}
          </dd>
          {run.finished_at && (
            <>
              <dt>Finished</dt>
              <dd>{formatTime(run.finished_at)}</dd>
            </>
          )}
        </dl>
        <h3>Summary</h3>
        <dl className="agiflow-run-summary" data-testid="agiflow-run-summary">
          <SummaryCell name="Pass rate" value={formatPercent(a.pass_rate)} className="agiflow-run-pass-rate" />
          <SummaryCell name="Mean score" value={formatScore(a.mean_score)} className="agiflow-run-mean-score" />
          <SummaryCell name="Errors" value={String(a.errors)} className="agiflow-run-errors" />
          <SummaryCell name="Evaluator errors" value={String(a.evaluator_errors)} className="" />
          <SummaryCell name="Latency p50" value={formatLatency(a.latency_p50_ms)} className="" />
          <SummaryCell name="Latency p95" value={formatLatency(a.latency_p95_ms)} className="" />
          <SummaryCell name="Tokens in/out" value={`${a.tokens_in} / ${a.tokens_out}`} className="" />
          <SummaryCell name="Cost" value={formatCost(a)} className="agiflow-run-cost" title={costTitle(a)} />
        </dl>
        {run.error && (
          <>
            <h3>Error</h3>
            <div className="agiflow-job-error" data-testid="agiflow-run-error">
              <div className="agiflow-job-error-head">
                {run.error.ename}
                {run.error.evalue ? `: ${run.error.evalue}` : ''}
              </div>
            </div>
          </>
        )}
        <h3>Evaluators</h3>
        <EvaluatorTable run={run} />
        <RunResults api={api} run={run} />
      </div>
    </div>
  );
}

function SummaryCell(props: { name: string; value: string; className: string; title?: string }): JSX.Element {
  return (
    <div className={`agiflow-run-summary-cell ${props.className}`} title={props.title}>
      <dt>{props.name}</dt>
      <dd>{props.value}</dd>
    </div>
  );
}

function EvaluatorTable({ run }: { run: Run }): JSX.Element {
  return (
    <table className="agiflow-table agiflow-evaluator-table" data-testid="agiflow-evaluator-table">
      <thead>
        <tr>
          <th>Name</th>
          <th>Type</th>
          <th className="agiflow-num">Threshold</th>
          <th className="agiflow-num">Pass rate</th>
          <th className="agiflow-num">Mean score</th>
          <th className="agiflow-num">Errors</th>
        </tr>
      </thead>
      <tbody>
        {run.aggregates.evaluators.map(e => (
          <tr key={e.name} data-evaluator={e.name}>
            <td>{e.name}</td>
            <td className="agiflow-muted">{e.type}</td>
            <td className="agiflow-num">{e.threshold}</td>
            <td className="agiflow-num agiflow-evaluator-pass-rate">{formatPercent(e.pass_rate)}</td>
            <td className="agiflow-num">{formatScore(e.mean_score)}</td>
            <td className="agiflow-num">{e.errors}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The run's items in dataset order, a page at a time; refetched when the run's state moves. */
function RunResults({ api, run }: { api: AgiflowApi; run: Run }): JSX.Element {
  const [failedOnly, setFailedOnly] = React.useState(false);
  const pages = usePages<Page<'ItemResult'>, ItemResult>(
    cursor => api.listRunResults(run.project, run.id, { failedOnly, cursor, limit: RESULTS_PAGE }),
    [api, run.project, run.id, failedOnly],
    run.state
  );
  // One score column per evaluator, in the run's order (an item may lack one: it errored before scoring).
  const evaluators = run.evaluators.map(e => e.name);
  return (
    <>
      <div className="agiflow-section-head">
        <h3>Items</h3>
        <label className="agiflow-toggle">
          <input
            type="checkbox"
            data-testid="agiflow-failed-only"
            checked={failedOnly}
            onChange={event => setFailedOnly(event.target.checked)}
          />
          <span>Failed only</span>
        </label>
      </div>
      {pages.error !== undefined && <ErrorNotice message={pages.error} />}
      {pages.first === undefined ? (
        pages.error === undefined && <div className="agiflow-muted">Loading items…</div>
      ) : pages.items.length === 0 ? (
        <div className="agiflow-muted" data-testid="agiflow-results-empty">
          {failedOnly ? 'No failed items.' : 'No item has finished yet.'}
        </div>
      ) : (
        <table className="agiflow-table agiflow-result-table" data-testid="agiflow-result-table">
          <thead>
            <tr>
              <th className="agiflow-col-input">Item and input</th>
              <th className="agiflow-col-output">Output</th>
              {evaluators.map(name => (
                <th key={name} className="agiflow-num" data-testid="agiflow-evaluator-column">
                  {name}
                </th>
              ))}
              <th>Passed</th>
              <th className="agiflow-col-explanations">Error / explanations</th>
            </tr>
          </thead>
          <tbody>
            {pages.items.map(item => (
              <ResultRow key={item.item_id} item={item} evaluators={evaluators} />
            ))}
          </tbody>
        </table>
      )}
      {pages.hasMore && (
        <button
          type="button"
          className="agiflow-link-button agiflow-more"
          data-testid="agiflow-results-more"
          disabled={pages.loading}
          onClick={pages.loadMore}
        >
          {pages.loading ? 'Loading…' : 'Load more'}
        </button>
      )}
    </>
  );
}

function ResultRow({ item, evaluators }: { item: ItemResult; evaluators: string[] }): JSX.Element {
  return (
    <tr data-item-id={item.item_id} data-passed={String(item.passed)}>
      <td>
        <div className="agiflow-job-id">{item.item_id}</div>
        <div className="agiflow-cell-text agiflow-item-input" data-testid="agiflow-item-input">
          {asText(item.input)}
        </div>
      </td>
      <td>
        <div className="agiflow-cell-text">{item.output ?? <span className="agiflow-muted">no output</span>}</div>
        {item.expected !== null && item.expected !== undefined && (
          <div className="agiflow-cell-text agiflow-muted" title="expected">
            expected: {asText(item.expected)}
          </div>
        )}
      </td>
      {evaluators.map(name => {
        const score = item.scores[name];
        return (
          <td key={name} className="agiflow-num" data-evaluator={name}>
            {score === undefined ? '–' : formatScore(score.score)}
            {score?.passed === false && <span className="agiflow-muted"> ✗</span>}
          </td>
        );
      })}
      <td>
        <PassChip passed={item.passed} />
      </td>
      <td>
        <Explanations item={item} />
      </td>
    </tr>
  );
}

export function Explanations({ item }: { item: ItemResult }): JSX.Element {
  return (
    <div className="agiflow-explanations">
      {item.error && <div className="agiflow-item-error">{item.error}</div>}
      {Object.entries(item.scores).map(([name, score]) => (
        <div key={name} className={score.error ? 'agiflow-item-error' : undefined}>
          <span className="agiflow-explanation-name">{name}</span> {score.error ?? score.explanation}
        </div>
      ))}
    </div>
  );
}
