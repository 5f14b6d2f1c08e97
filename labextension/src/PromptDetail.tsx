import { Clipboard, Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { ErrorNotice } from './ErrorNotice';
import { LabelChips } from './LabelChips';
import { PromptDiffView } from './PromptDiffView';
import { PromptLabels } from './PromptLabels';
import { PromptPlayground } from './PromptPlayground';
import { PromptsApi, snippetFor } from './promptsApi';
import { PromptVersionForm, type VersionDraft } from './PromptVersionForm';
import type { Page, PromptSummary, PromptTemplate, PromptVersion } from './types';
import { useAction } from './useAction';
import { usePages } from './usePages';
import { useRequest } from './useRequest';

export interface PromptDetailProps {
  api: AgiflowApi;
  project: string;
  prompt: PromptSummary;
  /** Whether the caller may write in the project (editors and owners); viewers see no edit controls. */
  canEdit?: boolean;
  /** The prompt changed here (a version, a label, archived): the list should ask again. */
  onChanged?: () => void;
  /** Shown as a "back to list" button when the list is hidden (sidebar). */
  onBack?: () => void;
}

type Tool = 'edit' | 'labels' | 'diff' | 'try' | null;

/**
 * One prompt: a version picker (every version with its labels), the chosen version's template and the SDK
 * call that fetches exactly that version, and for editors new versions, labels, diff, the playground.
 * It opens on the version an application gets: production when there is one, else the latest.
 */
export function PromptDetail({
  api,
  project,
  prompt,
  canEdit = false,
  onChanged,
  onBack
}: PromptDetailProps): JSX.Element {
  const prompts = React.useMemo(() => new PromptsApi(api), [api]);
  const followed = prompt.labels['production'] ?? prompt.latest_version;
  const [chosen, setChosen] = React.useState<number>(followed);
  const [tool, setTool] = React.useState<Tool>(null);
  React.useEffect(() => {
    setChosen(prompt.labels['production'] ?? prompt.latest_version);
    setTool(null);
  }, [project, prompt.name]); // eslint-disable-line react-hooks/exhaustive-deps -- only a new prompt resets the choice

  const versions = usePages<Page<'PromptVersion'>, PromptVersion>(
    cursor => prompts.versions(project, prompt.name, cursor),
    [prompts, project, prompt.name, prompt.latest_version, JSON.stringify(prompt.labels)]
  );
  const { data, error, loading, reload } = useRequest(
    () => api.read<PromptVersion>(['projects', project, 'prompts', prompt.name], { version: chosen }),
    [api, project, prompt.name, chosen, JSON.stringify(prompt.labels)]
  );
  const action = useAction(`${project}/${prompt.name}`);
  const changed = (): void => {
    onChanged?.();
    reload();
  };
  const saveVersion = (draft: VersionDraft): void =>
    void action.act('save', async () => {
      const made = await prompts.addVersion(project, prompt.name, {
        template: draft.template,
        config: draft.config,
        commit_message: draft.commit_message,
        labels: draft.labels
      });
      Notification.success(`${prompt.name}: version ${made.version} saved`, { autoClose: 3000 });
      setTool(null);
      setChosen(made.version);
      onChanged?.();
    });
  const archive = async (): Promise<void> => {
    const answer = await showDialog({
      title: `Archive ${prompt.name}?`,
      body: 'It disappears from lists and takes no new versions; applications can still fetch it.',
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Archive' })]
    });
    if (answer.button.accept) {
      await action.act('archive', async () => {
        await prompts.archive(project, prompt.name);
        Notification.info(`${prompt.name} archived`, { autoClose: 3000 });
        onChanged?.();
      });
    }
  };

  return (
    <section className="agiflow-prompt-detail" data-testid="agiflow-prompt-detail">
      <header className="agiflow-detail-header">
        {onBack && (
          <button type="button" className="agiflow-link-button" onClick={onBack} title="Back to the prompt list">
            ← Prompts
          </button>
        )}
        <h2 className="agiflow-detail-title">{prompt.name}</h2>
        <label className="agiflow-version-picker">
          <span className="agiflow-visually-hidden">Version</span>
          <select
            data-testid="agiflow-version-select"
            value={chosen}
            onChange={event => {
              if (event.target.value === 'more') {
                versions.loadMore();
              } else {
                setChosen(Number(event.target.value));
              }
            }}
          >
            {versions.items.length === 0 && <option value={chosen}>v{chosen}</option>}
            {versions.items.map(v => (
              <option key={v.version} value={v.version}>
                v{v.version}
                {v.labels.length ? ` · ${v.labels.join(', ')}` : ''}
              </option>
            ))}
            {versions.hasMore && <option value="more">older versions…</option>}
          </select>
        </label>
        {data && <span className="agiflow-chip agiflow-chip-type">{data.type}</span>}
      </header>
      {error !== undefined ? (
        <ErrorNotice message={error} onRetry={reload} />
      ) : data === undefined || loading ? (
        <div className="agiflow-status">Loading…</div>
      ) : (
        <>
          <div className="agiflow-prompt-tools" role="toolbar" aria-label="Prompt actions">
            {canEdit && (
              <ToolButton
                tool="edit"
                current={tool}
                onChoose={setTool}
                label="New version"
                testId="agiflow-tool-edit"
              />
            )}
            <ToolButton tool="labels" current={tool} onChoose={setTool} label="Labels" testId="agiflow-tool-labels" />
            <ToolButton tool="diff" current={tool} onChoose={setTool} label="Diff" testId="agiflow-tool-diff" />
            {canEdit && (
              <ToolButton tool="try" current={tool} onChoose={setTool} label="Try it" testId="agiflow-tool-try" />
            )}
            {canEdit && (
              <button
                type="button"
                className="jp-mod-styled jp-mod-warn agiflow-tool-end"
                disabled={action.busy !== null}
                onClick={() => void archive()}
              >
                Archive
              </button>
            )}
          </div>
          {tool === 'edit' && (
            <PromptVersionForm
              from={data}
              typeFixed
              submitLabel={`Save as v${prompt.latest_version + 1}`}
              busy={action.busy === 'save'}
              error={action.error}
              onSubmit={saveVersion}
              onCancel={() => setTool(null)}
            />
          )}
          {tool === 'labels' && (
            <PromptLabels
              prompts={prompts}
              project={project}
              name={prompt.name}
              labels={prompt.labels}
              version={data.version}
              canEdit={canEdit}
              onChanged={changed}
            />
          )}
          {tool === 'diff' && (
            <PromptDiffView
              prompts={prompts}
              project={project}
              name={prompt.name}
              version={data.version}
              latest={prompt.latest_version}
            />
          )}
          {tool === 'try' && <PromptPlayground prompts={prompts} project={project} version={data} />}
          {tool === null && action.error !== undefined && (
            <div className="agiflow-error" role="alert">
              {action.error}
            </div>
          )}
          <VersionBody version={data} snippet={snippetFor(prompt.name, data)} />
        </>
      )}
    </section>
  );
}

function ToolButton(props: {
  tool: Exclude<Tool, null>;
  current: Tool;
  onChoose: (tool: Tool) => void;
  label: string;
  testId: string;
}): JSX.Element {
  const on = props.current === props.tool;
  return (
    <button
      type="button"
      className={`agiflow-tab${on ? ' agiflow-mod-selected' : ''}`}
      aria-pressed={on}
      data-testid={props.testId}
      onClick={() => props.onChoose(on ? null : props.tool)}
    >
      {props.label}
    </button>
  );
}

function VersionBody({ version, snippet }: { version: PromptVersion; snippet: string }): JSX.Element {
  const configEntries = Object.keys(version.config ?? {});
  return (
    <div className="agiflow-detail-body">
      <LabelChips labels={version.labels} />
      <h3>Template</h3>
      <Template template={version.template} />
      <h3>Variables</h3>
      {version.variables.length ? (
        <span className="agiflow-variables" data-testid="agiflow-variables">
          {version.variables.map(name => (
            <code key={name} className="agiflow-chip agiflow-chip-variable">
              {`{{${name}}}`}
            </code>
          ))}
        </span>
      ) : (
        <div className="agiflow-muted">No variables</div>
      )}
      {configEntries.length > 0 && (
        <>
          <h3>Config</h3>
          <pre className="agiflow-code">{JSON.stringify(version.config, null, 2)}</pre>
        </>
      )}
      <h3>Use it from Python</h3>
      <SnippetBox snippet={snippet} />
      <dl className="agiflow-meta">
        {version.commit_message && (
          <>
            <dt>Commit</dt>
            <dd>{version.commit_message}</dd>
          </>
        )}
        {version.created_by && (
          <>
            <dt>Author</dt>
            <dd>{version.created_by}</dd>
          </>
        )}
        <dt>Created</dt>
        <dd title={version.created_at}>{formatDate(version.created_at)}</dd>
      </dl>
    </div>
  );
}

function Template({ template }: { template: PromptTemplate }): JSX.Element {
  if (typeof template === 'string') {
    return (
      <pre className="agiflow-code agiflow-template" data-testid="agiflow-template">
        {template}
      </pre>
    );
  }
  return (
    <div className="agiflow-template" data-testid="agiflow-template">
      {template.map((message, index) => (
        <div key={index} className="agiflow-chat-message">
          <div className="agiflow-chat-role">{message.role}</div>
          <pre className="agiflow-code">{message.content}</pre>
        </div>
      ))}
    </div>
  );
}

function SnippetBox({ snippet }: { snippet: string }): JSX.Element {
  const [copied, setCopied] = React.useState(false);
  // Let a narrow sidebar wrap the snippet after `get(` rather than inside the name.
  const cut = snippet.indexOf('(') + 1;
  const [head, tail] = [snippet.slice(0, cut), snippet.slice(cut)];
  React.useEffect(() => {
    if (!copied) {
      return;
    }
    const timer = window.setTimeout(() => setCopied(false), 1500);
    return () => window.clearTimeout(timer);
  }, [copied]);
  return (
    <div className="agiflow-snippet">
      <code className="agiflow-code" data-testid="agiflow-sdk-snippet">
        {head}
        <wbr />
        {tail}
      </code>
      <button
        type="button"
        className="jp-mod-styled jp-mod-accept agiflow-copy-button"
        onClick={() => {
          Clipboard.copyToSystem(snippet);
          setCopied(true);
        }}
      >
        {copied ? 'Copied' : 'Copy SDK snippet'}
      </button>
    </div>
  );
}

function formatDate(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}
