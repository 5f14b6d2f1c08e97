import { Notification } from '@jupyterlab/apputils';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { ErrorNotice } from './ErrorNotice';
import { PromptsApi } from './promptsApi';
import type { components } from './schema';
import type { Run } from './types';
import { useAction } from './useAction';
import { useRequest } from './useRequest';

type RunSubmit = components['schemas']['RunSubmit'];
type EvaluatorType = components['schemas']['EvaluatorType'];

/** One evaluator row of the form: the type, its name and threshold, any other options as JSON. */
interface EvaluatorDraft {
  type: string;
  name: string;
  threshold: string;
  options: string;
}

export interface EvalLaunchFormProps {
  api: AgiflowApi;
  project: string;
  /** Re-run: the form starts from this run (its prompt reference, dataset, model, evaluators); change one thing. */
  from: Run | null;
  onStarted: (run: Run) => void;
  onCancel: () => void;
}

const ECHO = 'echo';
const COMMON = new Set(['type', 'name', 'threshold']);

/**
 * Start an evaluation run: a prompt by label or version, a dataset version, a connection (or the built-in
 * echo) with its model and parameters, evaluators with their options and thresholds, concurrency.
 */
export function EvalLaunchForm({ api, project, from, onStarted, onCancel }: EvalLaunchFormProps): JSX.Element {
  const prompts = useRequest(() => api.listPrompts(project, { limit: 200 }), [api, project]);
  const datasets = useRequest(() => api.listDatasets(project, 200), [api, project]);
  const connections = useRequest(() => new PromptsApi(api).connections(project), [api, project]);
  const types = useRequest(
    () => api.read<{ items: EvaluatorType[] }>(['projects', project, 'evals', 'evaluators']),
    [api, project]
  );
  const ref = from?.prompt.ref ?? 'label:production';
  const [name, setName] = React.useState(from ? `${from.name} (re-run)` : '');
  const [prompt, setPrompt] = React.useState(from?.prompt.name ?? '');
  const [byLabel, setByLabel] = React.useState(!ref.startsWith('version:'));
  const [label, setLabel] = React.useState(ref.startsWith('label:') ? ref.slice('label:'.length) : 'production');
  const [version, setVersion] = React.useState(String(from?.prompt.version ?? ''));
  const [dataset, setDataset] = React.useState(from?.dataset.name ?? '');
  const [datasetVersion, setDatasetVersion] = React.useState(from ? String(from.dataset.version) : '');
  const [connection, setConnection] = React.useState(from?.model.connection ?? ECHO);
  const [model, setModel] = React.useState(from?.model.model ?? '');
  const [params, setParams] = React.useState(JSON.stringify(from?.model.params ?? {}));
  const [concurrency, setConcurrency] = React.useState(String(from?.concurrency ?? 8));
  const [evaluators, setEvaluators] = React.useState<EvaluatorDraft[]>(
    from
      ? from.evaluators.map(e => ({
          type: e.type,
          name: e.name === e.type ? '' : e.name,
          threshold: String(e.threshold),
          options: JSON.stringify(Object.fromEntries(Object.entries(e).filter(([k]) => !COMMON.has(k))))
        }))
      : [{ type: 'exact_match', name: '', threshold: '1', options: '{}' }]
  );
  const [formError, setFormError] = React.useState<string | undefined>();
  const { busy, error, act } = useAction(project);

  // First choices once the lists arrive (a re-run keeps its own).
  React.useEffect(() => {
    if (!prompt && prompts.data?.items[0]) {
      setPrompt(prompts.data.items[0].name);
    }
  }, [prompts.data, prompt]);
  React.useEffect(() => {
    if (!dataset && datasets.data?.items[0]) {
      setDataset(datasets.data.items[0].name);
    }
  }, [datasets.data, dataset]);

  const setEvaluator = (index: number, change: Partial<EvaluatorDraft>): void =>
    setEvaluators(all => all.map((e, i) => (i === index ? { ...e, ...change } : e)));

  const submit = (event: React.FormEvent): void => {
    event.preventDefault();
    let body: RunSubmit;
    try {
      body = {
        name: name.trim(),
        prompt: byLabel
          ? { name: prompt, label: label.trim() || 'production' }
          : { name: prompt, version: Number(version) },
        dataset: { name: dataset, version: datasetVersion.trim() ? Number(datasetVersion) : null },
        model: { connection, model: model.trim() || null, params: jsonObject(params, 'Model parameters') },
        evaluators: evaluators.map((e, i) => ({
          ...jsonObject(e.options, `Options of evaluator ${i + 1}`),
          type: e.type,
          name: e.name.trim() || null,
          threshold: Number(e.threshold)
        })) as RunSubmit['evaluators'],
        concurrency: Number(concurrency)
      };
    } catch (reason) {
      setFormError(String(reason instanceof Error ? reason.message : reason));
      return;
    }
    setFormError(undefined);
    void act('start', async () => {
      const run = await api.call<Run>('POST', ['projects', project, 'evals', 'runs'], body);
      Notification.info(`Evaluation run started: ${run.name}`, { autoClose: 3000 });
      onStarted(run);
    });
  };

  const loadError = prompts.error ?? datasets.error ?? types.error;
  return (
    <form className="agiflow-form agiflow-eval-launch" data-testid="agiflow-eval-launch" onSubmit={submit}>
      <h3>{from ? `Re-run ${from.name}` : 'New evaluation run'}</h3>
      {loadError !== undefined && <ErrorNotice message={loadError} />}
      <label className="agiflow-form-field">
        <span>Name (optional)</span>
        <input data-testid="agiflow-launch-name" value={name} onChange={event => setName(event.target.value)} />
      </label>
      <div className="agiflow-form-row">
        <label className="agiflow-form-field">
          <span>Prompt</span>
          <select data-testid="agiflow-launch-prompt" value={prompt} onChange={event => setPrompt(event.target.value)}>
            {(prompts.data?.items ?? []).map(p => (
              <option key={p.name} value={p.name}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        <label className="agiflow-form-field">
          <span>By</span>
          <select value={byLabel ? 'label' : 'version'} onChange={event => setByLabel(event.target.value === 'label')}>
            <option value="label">label</option>
            <option value="version">version</option>
          </select>
        </label>
        {byLabel ? (
          <label className="agiflow-form-field">
            <span>Label</span>
            <input data-testid="agiflow-launch-label" value={label} onChange={event => setLabel(event.target.value)} />
          </label>
        ) : (
          <label className="agiflow-form-field">
            <span>Version</span>
            <input
              type="number"
              min={1}
              data-testid="agiflow-launch-version"
              value={version}
              onChange={event => setVersion(event.target.value)}
            />
          </label>
        )}
      </div>
      <div className="agiflow-form-row">
        <label className="agiflow-form-field">
          <span>Dataset</span>
          <select
            data-testid="agiflow-launch-dataset"
            value={dataset}
            onChange={event => setDataset(event.target.value)}
          >
            {(datasets.data?.items ?? []).map(d => (
              <option key={d.name} value={d.name}>
                {d.name} (v{d.latest_version}, {d.item_count} items)
              </option>
            ))}
          </select>
        </label>
        <label className="agiflow-form-field">
          <span>Dataset version</span>
          <input
            type="number"
            min={1}
            placeholder="latest"
            value={datasetVersion}
            onChange={event => setDatasetVersion(event.target.value)}
          />
        </label>
      </div>
      <div className="agiflow-form-row">
        <label className="agiflow-form-field">
          <span>Connection</span>
          <select
            data-testid="agiflow-launch-connection"
            value={connection}
            onChange={event => setConnection(event.target.value)}
          >
            <option value={ECHO}>echo (built-in: answers with the prompt, no model)</option>
            {(connections.data?.items ?? []).map(c => (
              <option key={c.name} value={c.name}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <label className="agiflow-form-field">
          <span>Model</span>
          <input
            value={model}
            placeholder="the prompt's, else the connection's"
            onChange={event => setModel(event.target.value)}
          />
        </label>
        <label className="agiflow-form-field">
          <span>Parameters (JSON)</span>
          <input value={params} onChange={event => setParams(event.target.value)} />
        </label>
        <label className="agiflow-form-field">
          <span>Concurrency</span>
          <input
            type="number"
            min={1}
            max={256}
            value={concurrency}
            onChange={event => setConcurrency(event.target.value)}
          />
        </label>
      </div>
      <fieldset className="agiflow-form-field agiflow-messages-input">
        <legend>Evaluators</legend>
        {evaluators.map((e, index) => {
          const type = types.data?.items.find(t => t.type === e.type);
          const options = Object.keys(type?.config_schema['properties'] ?? {}).filter(k => !COMMON.has(k));
          return (
            <div key={index} className="agiflow-evaluator-input" data-testid="agiflow-launch-evaluator">
              <select
                aria-label={`Type of evaluator ${index + 1}`}
                value={e.type}
                onChange={event => setEvaluator(index, { type: event.target.value, options: '{}' })}
              >
                {(types.data?.items ?? [{ type: e.type, description: '' }]).map(t => (
                  <option key={t.type} value={t.type} title={t.description}>
                    {t.type}
                  </option>
                ))}
              </select>
              <input
                aria-label={`Name of evaluator ${index + 1}`}
                placeholder="name (default: the type)"
                value={e.name}
                onChange={event => setEvaluator(index, { name: event.target.value })}
              />
              <input
                aria-label={`Threshold of evaluator ${index + 1}`}
                type="number"
                min={0}
                max={1}
                step={0.05}
                value={e.threshold}
                onChange={event => setEvaluator(index, { threshold: event.target.value })}
              />
              <input
                aria-label={`Options of evaluator ${index + 1} (JSON)`}
                title={options.length ? `Options: ${options.join(', ')}` : 'No other options'}
                placeholder={options.length ? `{"${options[0]}": …}` : '{}'}
                value={e.options}
                onChange={event => setEvaluator(index, { options: event.target.value })}
              />
              <button
                type="button"
                className="jp-mod-styled jp-mod-reject"
                disabled={evaluators.length === 1}
                onClick={() => setEvaluators(all => all.filter((_, i) => i !== index))}
              >
                Remove
              </button>
              {type && <span className="agiflow-muted agiflow-evaluator-help">{type.description}</span>}
            </div>
          );
        })}
        <button
          type="button"
          className="jp-mod-styled"
          onClick={() => setEvaluators(all => [...all, { type: 'contains', name: '', threshold: '1', options: '{}' }])}
        >
          Add evaluator
        </button>
      </fieldset>
      {(formError ?? error) !== undefined && (
        <div className="agiflow-error" role="alert">
          {formError ?? error}
        </div>
      )}
      <div className="agiflow-form-actions">
        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept"
          data-testid="agiflow-launch-start"
          disabled={busy !== null || !prompt || !dataset}
        >
          {busy ? 'Starting…' : 'Start run'}
        </button>
        <button type="button" className="jp-mod-styled jp-mod-reject" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function jsonObject(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = text.trim() ? JSON.parse(text) : {};
  } catch {
    throw new Error(`${what}: not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${what}: a JSON object, e.g. {"key": "value"}`);
  }
  return value as Record<string, unknown>;
}
