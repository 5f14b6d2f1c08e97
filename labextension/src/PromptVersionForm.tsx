import * as React from 'react';

import type { ChatMessage, PromptTemplate, PromptType } from './types';

/** What the form produces: the fields a new version (or a new prompt's first version) is made of. */
export interface VersionDraft {
  type: PromptType;
  template: PromptTemplate;
  config: Record<string, unknown>;
  commit_message: string;
  labels: string[];
}

export interface PromptVersionFormProps {
  /** The version edited from (its template and parameters prefill the form); null: a blank text prompt. */
  from: { type: PromptType; template: PromptTemplate; config: Record<string, unknown> } | null;
  /** A new prompt may still choose text or chat; a new version keeps its prompt's type. */
  typeFixed: boolean;
  submitLabel: string;
  busy: boolean;
  error: string | undefined;
  onSubmit: (draft: VersionDraft) => void;
  onCancel: () => void;
  /** Extra fields shown first (a new prompt's name). */
  children?: React.ReactNode;
}

const ROLES: ChatMessage['role'][] = ['system', 'user', 'assistant', 'developer', 'tool'];

/**
 * Edit a template as a new immutable version: the text, or the chat messages one by one, the model
 * parameters as JSON, a commit message and the labels to move onto it.
 */
export function PromptVersionForm(props: PromptVersionFormProps): JSX.Element {
  const { from, typeFixed, submitLabel, busy, error, onSubmit, onCancel, children } = props;
  const [type, setType] = React.useState<PromptType>(from?.type ?? 'text');
  const [text, setText] = React.useState(typeof from?.template === 'string' ? from.template : '');
  const [messages, setMessages] = React.useState<ChatMessage[]>(
    Array.isArray(from?.template) ? from.template : [{ role: 'user', content: '' }]
  );
  const [config, setConfig] = React.useState(JSON.stringify(from?.config ?? {}, null, 2));
  const [commit, setCommit] = React.useState('');
  const [labels, setLabels] = React.useState('');
  const [configError, setConfigError] = React.useState<string | undefined>();

  const submit = (event: React.FormEvent): void => {
    event.preventDefault();
    let parsed: unknown;
    try {
      parsed = config.trim() ? JSON.parse(config) : {};
    } catch (reason) {
      setConfigError(`Model parameters are not JSON: ${String(reason)}`);
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      setConfigError('Model parameters must be a JSON object, e.g. {"model": "gpt-4o", "temperature": 0.2}');
      return;
    }
    setConfigError(undefined);
    onSubmit({
      type,
      template: type === 'text' ? text : messages,
      config: parsed as Record<string, unknown>,
      commit_message: commit,
      labels: labels
        .split(',')
        .map(l => l.trim())
        .filter(Boolean)
    });
  };
  const setMessage = (index: number, change: Partial<ChatMessage>): void =>
    setMessages(all => all.map((m, i) => (i === index ? { ...m, ...change } : m)));

  return (
    <form className="agiflow-form" data-testid="agiflow-version-form" onSubmit={submit}>
      {children}
      {!typeFixed && (
        <label className="agiflow-form-field">
          <span>Type</span>
          <select value={type} onChange={event => setType(event.target.value as PromptType)}>
            <option value="text">text</option>
            <option value="chat">chat (messages)</option>
          </select>
        </label>
      )}
      {type === 'text' ? (
        <label className="agiflow-form-field">
          <span>Template</span>
          <textarea
            className="agiflow-template-input"
            data-testid="agiflow-template-input"
            rows={6}
            value={text}
            placeholder="Use {{variables}} for what changes per call"
            onChange={event => setText(event.target.value)}
          />
        </label>
      ) : (
        <fieldset className="agiflow-form-field agiflow-messages-input">
          <legend>Messages</legend>
          {messages.map((message, index) => (
            <div key={index} className="agiflow-message-input">
              <select
                aria-label={`Role of message ${index + 1}`}
                value={message.role}
                onChange={event => setMessage(index, { role: event.target.value as ChatMessage['role'] })}
              >
                {ROLES.map(role => (
                  <option key={role} value={role}>
                    {role}
                  </option>
                ))}
              </select>
              <textarea
                aria-label={`Content of message ${index + 1}`}
                rows={3}
                value={message.content}
                onChange={event => setMessage(index, { content: event.target.value })}
              />
              <button
                type="button"
                className="jp-mod-styled jp-mod-reject"
                aria-label={`Remove message ${index + 1}`}
                disabled={messages.length === 1}
                onClick={() => setMessages(all => all.filter((_, i) => i !== index))}
              >
                Remove
              </button>
            </div>
          ))}
          <button
            type="button"
            className="jp-mod-styled"
            onClick={() => setMessages(all => [...all, { role: 'user', content: '' }])}
          >
            Add message
          </button>
        </fieldset>
      )}
      <label className="agiflow-form-field">
        <span>Model parameters (JSON)</span>
        <textarea
          className="agiflow-code-input"
          data-testid="agiflow-config-input"
          rows={3}
          value={config}
          onChange={event => setConfig(event.target.value)}
        />
      </label>
      <label className="agiflow-form-field">
        <span>Commit message</span>
        <input
          data-testid="agiflow-commit-input"
          value={commit}
          placeholder="What changed and why"
          onChange={event => setCommit(event.target.value)}
        />
      </label>
      <label className="agiflow-form-field">
        <span>Labels to move onto it (comma-separated)</span>
        <input
          data-testid="agiflow-labels-input"
          value={labels}
          placeholder="e.g. staging"
          onChange={event => setLabels(event.target.value)}
        />
      </label>
      {(configError ?? error) !== undefined && (
        <div className="agiflow-error" role="alert">
          {configError ?? error}
        </div>
      )}
      <div className="agiflow-form-actions">
        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept"
          data-testid="agiflow-version-save"
          disabled={busy}
        >
          {busy ? 'Saving…' : submitLabel}
        </button>
        <button type="button" className="jp-mod-styled jp-mod-reject" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
