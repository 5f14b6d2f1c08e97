import { Button, InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import { ErrorNotice } from './ErrorNotice';
import type { Connection, ConnectionTestResult, ModelsApi } from './modelsApi';
import { useAction } from './useAction';

const DEFAULT_PROMPT = 'Reply with the single word: OK';

/** One small completion through a connection: the answer, latency and tokens, or the provider's error. */
export function ModelTest(props: { api: ModelsApi; project: string; connection: Connection }): JSX.Element {
  const { api, project, connection } = props;
  const [model, setModel] = React.useState('');
  const [prompt, setPrompt] = React.useState(DEFAULT_PROMPT);
  const [result, setResult] = React.useState<ConnectionTestResult | null>(null);
  const { busy, error, act } = useAction(connection.name);

  return (
    <div className="agiflow-model-test-panel" data-testid="agiflow-model-test-panel">
      <form
        className="agiflow-manage-form"
        onSubmit={event => {
          event.preventDefault();
          setResult(null);
          void act('test', async () => {
            setResult(
              await api.test(project, connection.name, {
                model: model.trim() || null,
                prompt: prompt.trim() || DEFAULT_PROMPT
              })
            );
          });
        }}
      >
        <label className="agiflow-field">
          <span>Model</span>
          <InputGroup
            data-testid="agiflow-model-test-model"
            placeholder={connection.default_model ?? 'the model to call'}
            value={model}
            onChange={event => setModel(event.target.value)}
          />
        </label>
        <label className="agiflow-field">
          <span>Prompt</span>
          <InputGroup
            data-testid="agiflow-model-test-prompt"
            value={prompt}
            maxLength={2000}
            onChange={event => setPrompt(event.target.value)}
          />
        </label>
        <Button type="submit" className="jp-mod-accept" data-testid="agiflow-model-test" disabled={busy !== null}>
          {busy ? 'Calling…' : 'Test'}
        </Button>
      </form>
      {error !== undefined && <ErrorNotice message={error} />}
      {result !== null && (
        <div
          className={`agiflow-model-test ${result.ok ? 'agiflow-model-test-ok' : 'agiflow-model-test-failed'}`}
          data-testid="agiflow-model-test-result"
          data-ok={String(result.ok)}
          role="status"
        >
          <span
            className={`agiflow-chip agiflow-manage-chip ${result.ok ? 'agiflow-manage-chip-ok' : 'agiflow-manage-chip-error'}`}
          >
            {result.ok ? 'OK' : 'failed'}
          </span>{' '}
          {result.model} · {Math.round(result.latency_ms)} ms
          {result.tokens_in !== null && ` · ${result.tokens_in} tokens in, ${result.tokens_out ?? 0} out`}
          {result.ok ? (
            <pre data-testid="agiflow-model-test-output">{result.output ?? ''}</pre>
          ) : (
            <pre data-testid="agiflow-model-test-error">
              {result.status !== null ? `HTTP ${result.status}: ` : ''}
              {result.error ?? 'no answer'}
              {result.retryable ? ' (retryable)' : ''}
            </pre>
          )}
        </div>
      )}
    </div>
  );
}
