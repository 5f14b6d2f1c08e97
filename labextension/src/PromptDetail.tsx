import { Clipboard } from '@jupyterlab/apputils';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { ErrorNotice } from './ErrorNotice';
import { LabelChips } from './LabelChips';
import { sdkSnippet } from './snippet';
import type { PromptSummary, PromptTemplate, PromptVersion } from './types';
import { useRequest } from './useRequest';

export interface PromptDetailProps {
  api: AgiflowApi;
  project: string;
  prompt: PromptSummary;
  /** Shown as a "back to list" button when the list is hidden (sidebar). */
  onBack?: () => void;
}

/** The latest version of one prompt. */
export function PromptDetail({ api, project, prompt, onBack }: PromptDetailProps): JSX.Element {
  const { data, error, loading, reload } = useRequest(
    () => api.getPrompt(project, prompt.name, 'latest'),
    [api, project, prompt.name, prompt.latest_version]
  );
  // The snippet names the label an application should follow: production
  // when the prompt has one, latest otherwise.
  const label = 'production' in prompt.labels ? 'production' : 'latest';

  return (
    <section className="agiflow-prompt-detail" data-testid="agiflow-prompt-detail">
      <header className="agiflow-detail-header">
        {onBack && (
          <button type="button" className="agiflow-link-button" onClick={onBack} title="Back to the prompt list">
            ← Prompts
          </button>
        )}
        <h2 className="agiflow-detail-title">{prompt.name}</h2>
        {data && <span className="agiflow-prompt-version">v{data.version}</span>}
        {data && <span className="agiflow-chip agiflow-chip-type">{data.type}</span>}
      </header>
      {error !== undefined ? (
        <ErrorNotice message={error} onRetry={reload} />
      ) : data === undefined || loading ? (
        <div className="agiflow-status">Loading…</div>
      ) : (
        <VersionBody version={data} snippet={sdkSnippet(prompt.name, label)} />
      )}
    </section>
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
