import * as React from 'react';

import { type LabelMove, PromptsApi } from './promptsApi';
import { useAction } from './useAction';
import { useRequest } from './useRequest';
import { ErrorNotice } from './ErrorNotice';

export interface PromptLabelsProps {
  prompts: PromptsApi;
  project: string;
  name: string;
  /** label → version, as the prompt has them now */
  labels: Record<string, number>;
  /** the version on screen: "point a label here" moves onto it */
  version: number;
  canEdit: boolean;
  onChanged: () => void;
}

/** Labels with the version each points at, their move history, rollback, and moving one onto the shown version. */
export function PromptLabels({
  prompts,
  project,
  name,
  labels,
  version,
  canEdit,
  onChanged
}: PromptLabelsProps): JSX.Element {
  const [label, setLabel] = React.useState('production');
  const [history, setHistory] = React.useState<string | null>(null);
  const { busy, error, act } = useAction(`${project}/${name}`);
  const move = (target: string): Promise<void> =>
    act('move', async () => {
      await prompts.moveLabel(project, name, target, version);
      onChanged();
    });

  return (
    <div className="agiflow-prompt-labels" data-testid="agiflow-prompt-labels">
      <table className="agiflow-table">
        <thead>
          <tr>
            <th>Label</th>
            <th>Version</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {Object.entries(labels).map(([l, v]) => (
            <tr key={l} data-testid="agiflow-label-row" data-label={l}>
              <td>
                <span className="agiflow-chip agiflow-chip-label">{l}</span>
              </td>
              <td>v{v}</td>
              <td className="agiflow-row-actions">
                <button type="button" className="jp-mod-styled" onClick={() => setHistory(history === l ? null : l)}>
                  {history === l ? 'Hide history' : 'History'}
                </button>
                {canEdit && l !== 'latest' && (
                  <button
                    type="button"
                    className="jp-mod-styled"
                    data-testid="agiflow-label-rollback"
                    disabled={busy !== null}
                    title="Point the label back where it was before its last move"
                    onClick={() =>
                      void act('rollback', async () => {
                        await prompts.rollback(project, name, l);
                        onChanged();
                      })
                    }
                  >
                    Roll back
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {history !== null && (
        <LabelHistory prompts={prompts} project={project} name={name} label={history} labels={labels} />
      )}
      {canEdit && (
        <form
          className="agiflow-inline-form"
          onSubmit={event => {
            event.preventDefault();
            void move(label.trim());
          }}
        >
          <label className="agiflow-form-field">
            <span>Label</span>
            <input data-testid="agiflow-label-name" value={label} onChange={event => setLabel(event.target.value)} />
          </label>
          <button
            type="submit"
            className="jp-mod-styled jp-mod-accept"
            data-testid="agiflow-label-move"
            disabled={busy !== null || !label.trim() || label.trim() === 'latest'}
          >
            Point at v{version}
          </button>
        </form>
      )}
      {error !== undefined && (
        <div className="agiflow-error" role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

function LabelHistory(props: {
  prompts: PromptsApi;
  project: string;
  name: string;
  label: string;
  labels: Record<string, number>;
}): JSX.Element {
  const { prompts, project, name, label, labels } = props;
  const moves = useRequest(
    () => prompts.labelHistory(project, name, label),
    [prompts, project, name, label, labels[label]]
  );
  if (moves.error !== undefined) {
    return <ErrorNotice message={moves.error} onRetry={moves.reload} />;
  }
  if (moves.data === undefined) {
    return <div className="agiflow-muted">Loading history…</div>;
  }
  return (
    <table className="agiflow-table agiflow-label-history" data-testid="agiflow-label-history">
      <thead>
        <tr>
          <th>{label}</th>
          <th>By</th>
          <th>When</th>
        </tr>
      </thead>
      <tbody>
        {moves.data.items.map((m: LabelMove, i: number) => (
          <tr key={i}>
            <td>
              {m.from_version === null ? 'new' : `v${m.from_version}`} →{' '}
              {m.to_version === null ? 'removed' : `v${m.to_version}`}
            </td>
            <td>{m.moved_by}</td>
            <td title={m.moved_at}>{new Date(m.moved_at).toLocaleString()}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
