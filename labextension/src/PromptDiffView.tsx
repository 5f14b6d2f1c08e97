import * as React from 'react';

import { ErrorNotice } from './ErrorNotice';
import type { PromptsApi } from './promptsApi';
import { useRequest } from './useRequest';

export interface PromptDiffViewProps {
  prompts: PromptsApi;
  project: string;
  name: string;
  /** the version on screen (the "to" side) */
  version: number;
  latest: number;
}

/** The shown version against any other: the template as a unified diff, then parameter and variable changes. */
export function PromptDiffView({ prompts, project, name, version, latest }: PromptDiffViewProps): JSX.Element {
  const [other, setOther] = React.useState(version > 1 ? version - 1 : Math.min(latest, version + 1));
  const diff = useRequest(other === version ? null : () => prompts.diff(project, name, other, version), [
    prompts,
    project,
    name,
    other,
    version
  ]);
  const choices = Array.from({ length: latest }, (_, i) => latest - i).filter(v => v !== version);
  return (
    <div className="agiflow-prompt-diff" data-testid="agiflow-prompt-diff">
      <label className="agiflow-form-field agiflow-inline-form">
        <span>Compare v{version} with</span>
        <select data-testid="agiflow-diff-other" value={other} onChange={event => setOther(Number(event.target.value))}>
          {choices.map(v => (
            <option key={v} value={v}>
              v{v}
            </option>
          ))}
        </select>
      </label>
      {choices.length === 0 ? (
        <div className="agiflow-muted">This prompt has one version.</div>
      ) : diff.error !== undefined ? (
        <ErrorNotice message={diff.error} onRetry={diff.reload} />
      ) : diff.data === undefined ? (
        <div className="agiflow-muted">Loading…</div>
      ) : (
        <>
          <pre className="agiflow-code agiflow-diff" data-testid="agiflow-diff-lines">
            {diff.data.template_diff.length === 0
              ? 'The templates are the same.'
              : diff.data.template_diff.map((line, i) => (
                  <span key={i} className={lineClass(line)}>
                    {line}
                    {'\n'}
                  </span>
                ))}
          </pre>
          {diff.data.config_changes.length > 0 && (
            <table className="agiflow-table">
              <thead>
                <tr>
                  <th>Parameter</th>
                  <th>v{other}</th>
                  <th>v{version}</th>
                </tr>
              </thead>
              <tbody>
                {diff.data.config_changes.map(c => (
                  <tr key={c.key}>
                    <td>{c.key}</td>
                    <td>{JSON.stringify(c.before)}</td>
                    <td>{JSON.stringify(c.after)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {(diff.data.variables_added.length > 0 || diff.data.variables_removed.length > 0) && (
            <div className="agiflow-muted">
              {diff.data.variables_added.length > 0 && `Variables added: ${diff.data.variables_added.join(', ')}. `}
              {diff.data.variables_removed.length > 0 &&
                `Variables removed: ${diff.data.variables_removed.join(', ')}.`}
            </div>
          )}
        </>
      )}
    </div>
  );
}

function lineClass(line: string): string {
  if (line.startsWith('+') && !line.startsWith('+++')) {
    return 'agiflow-diff-add';
  }
  if (line.startsWith('-') && !line.startsWith('---')) {
    return 'agiflow-diff-del';
  }
  return 'agiflow-diff-same';
}
