import * as React from 'react';

import { type ConnectionTestResult, type PromptsApi, type Rendered } from './promptsApi';
import type { PromptVersion } from './types';
import { useAction } from './useAction';
import { useRequest } from './useRequest';

export interface PromptPlaygroundProps {
  prompts: PromptsApi;
  project: string;
  version: PromptVersion;
}

/** Fill the variables, render the shown version, and try it on one of the project's model connections. */
export function PromptPlayground({ prompts, project, version }: PromptPlaygroundProps): JSX.Element {
  const [values, setValues] = React.useState<Record<string, string>>({});
  const [rendered, setRendered] = React.useState<Rendered | null>(null);
  const [answer, setAnswer] = React.useState<ConnectionTestResult | null>(null);
  const [connection, setConnection] = React.useState('');
  const connections = useRequest(() => prompts.connections(project), [prompts, project]);
  const { busy, error, act } = useAction(`${project}/${version.name}/${version.version}`);
  React.useEffect(() => {
    setRendered(null);
    setAnswer(null);
  }, [version]);
  React.useEffect(() => {
    const first = connections.data?.items[0]?.name;
    if (!connection && first) {
      setConnection(first);
    }
  }, [connections.data, connection]);

  const render = (): Promise<Rendered> => prompts.render(project, version.name, version.version, values);
  const model = typeof version.config['model'] === 'string' ? version.config['model'] : null;

  return (
    <div className="agiflow-playground" data-testid="agiflow-playground">
      {version.variables.map(name => (
        <label key={name} className="agiflow-form-field">
          <span>{name}</span>
          <input
            data-testid="agiflow-playground-variable"
            data-variable={name}
            value={values[name] ?? ''}
            onChange={event => setValues(all => ({ ...all, [name]: event.target.value }))}
          />
        </label>
      ))}
      <div className="agiflow-form-actions">
        <button
          type="button"
          className="jp-mod-styled"
          data-testid="agiflow-playground-render"
          disabled={busy !== null}
          onClick={() =>
            void act('render', async () => {
              setRendered(await render());
            })
          }
        >
          Render
        </button>
        <select
          aria-label="Model connection"
          data-testid="agiflow-playground-connection"
          value={connection}
          onChange={event => setConnection(event.target.value)}
        >
          {(connections.data?.items ?? []).map(c => (
            <option key={c.name} value={c.name}>
              {c.name}
            </option>
          ))}
        </select>
        <button
          type="button"
          className="jp-mod-styled jp-mod-accept"
          data-testid="agiflow-playground-try"
          disabled={busy !== null || !connection}
          title={connection ? `Send the rendered prompt to ${connection}` : 'Add a model connection first'}
          onClick={() =>
            void act('try', async () => {
              const shown = await render();
              setRendered(shown);
              setAnswer(await prompts.tryOn(project, connection, asText(shown), model));
            })
          }
        >
          {busy === 'try' ? 'Calling…' : 'Try it'}
        </button>
      </div>
      {connections.data?.items.length === 0 && (
        <div className="agiflow-muted">
          No model connections in this project: add one in AGIFlow Models to try prompts.
        </div>
      )}
      {error !== undefined && (
        <div className="agiflow-error" role="alert">
          {error}
        </div>
      )}
      {rendered && (
        <pre className="agiflow-code" data-testid="agiflow-playground-rendered">
          {asText(rendered)}
        </pre>
      )}
      {answer && (
        <div className={answer.ok ? 'agiflow-answer' : 'agiflow-error'} data-testid="agiflow-playground-answer">
          <pre className="agiflow-code">{answer.ok ? answer.output : answer.error}</pre>
          <span className="agiflow-muted">
            {answer.model} · {Math.round(answer.latency_ms)} ms
            {answer.tokens_in !== null && ` · ${answer.tokens_in} → ${answer.tokens_out ?? 0} tokens`}
          </span>
        </div>
      )}
    </div>
  );
}

/** A chat prompt is sent to the test call as its messages, one per line with the role. */
function asText(rendered: Rendered): string {
  if (rendered.text !== null && rendered.text !== undefined) {
    return rendered.text;
  }
  return (rendered.messages ?? []).map(m => `${m.role}: ${m.content}`).join('\n');
}
