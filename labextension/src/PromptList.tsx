import * as React from 'react';

import { LabelChips } from './LabelChips';
import type { PromptSummary } from './types';

export interface PromptListProps {
  prompts: PromptSummary[];
  selected: string | null;
  onSelect: (prompt: PromptSummary) => void;
}

export function PromptList({ prompts, selected, onSelect }: PromptListProps): JSX.Element {
  return (
    <ul className="agiflow-prompt-list" data-testid="agiflow-prompt-list">
      {prompts.map(prompt => (
        <li key={prompt.name}>
          <button
            type="button"
            className={'agiflow-prompt-item' + (prompt.name === selected ? ' agiflow-mod-selected' : '')}
            data-testid="agiflow-prompt-item"
            data-prompt-name={prompt.name}
            aria-current={prompt.name === selected ? 'true' : undefined}
            onClick={() => onSelect(prompt)}
          >
            <span className="agiflow-prompt-item-head">
              <span className="agiflow-prompt-name">{prompt.name}</span>
              <span className="agiflow-chip agiflow-chip-type">{prompt.type}</span>
              <span className="agiflow-prompt-version">v{prompt.latest_version}</span>
            </span>
            {prompt.description && <span className="agiflow-prompt-description">{prompt.description}</span>}
            <span className="agiflow-prompt-item-meta">
              <LabelChips labels={prompt.labels} />
              {prompt.tags.map(tag => (
                <span key={tag} className="agiflow-chip agiflow-chip-tag">
                  #{tag}
                </span>
              ))}
            </span>
          </button>
        </li>
      ))}
    </ul>
  );
}
