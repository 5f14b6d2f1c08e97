import { refreshIcon, searchIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { ErrorNotice } from './ErrorNotice';
import { PromptDetail } from './PromptDetail';
import { PromptList } from './PromptList';
import type { Page, PromptSummary } from './types';
import { useProjectChoice } from './useProjectChoice';
import { RequestState, useRequest } from './useRequest';

/** `sidebar`: list or detail, one at a time. `main`: list and detail side by side. */
export type BrowserMode = 'sidebar' | 'main';

export interface PromptBrowserProps {
  api: AgiflowApi;
  mode: BrowserMode;
}

const PAGE_SIZE = 50;
const SEARCH_DELAY_MS = 250;

export function PromptBrowser({ api, mode }: PromptBrowserProps): JSX.Element {
  const { projects, project, setProject } = useProjectChoice(api);
  const items = projects.data?.items;
  const [search, setSearch] = React.useState('');
  const query = useDebounced(search.trim(), SEARCH_DELAY_MS);
  const [selected, setSelected] = React.useState<PromptSummary | null>(null);

  const prompts = useRequest(
    project === null ? null : () => api.listPrompts(project, { search: query, limit: PAGE_SIZE }),
    [api, project, query]
  );

  // Keep the selection in step with the list (a refresh may bring a new version).
  React.useEffect(() => {
    if (selected && prompts.data) {
      const fresh = prompts.data.items.find(p => p.name === selected.name);
      if (fresh && fresh !== selected) {
        setSelected(fresh);
      }
    }
  }, [prompts.data, selected]);

  const refresh = (): void => {
    projects.reload();
    prompts.reload();
  };
  const changeProject = (slug: string): void => {
    setSelected(null);
    setProject(slug);
  };

  const detail =
    selected && project !== null ? (
      <PromptDetail
        api={api}
        project={project}
        prompt={selected}
        onBack={mode === 'sidebar' ? () => setSelected(null) : undefined}
      />
    ) : null;
  const showList = mode === 'main' || detail === null;

  return (
    <div className={`agiflow-browser agiflow-mode-${mode}`} data-testid="agiflow-browser">
      <div className="agiflow-toolbar">
        <span className="agiflow-title">AGIFlow Prompts</span>
        <button type="button" className="agiflow-icon-button" title="Refresh" aria-label="Refresh" onClick={refresh}>
          <refreshIcon.react tag="span" />
        </button>
      </div>
      {projects.error !== undefined ? (
        <ErrorNotice message={projects.error} onRetry={projects.reload} />
      ) : items === undefined ? (
        <div className="agiflow-status">Loading projects…</div>
      ) : items.length === 0 ? (
        <div className="agiflow-status">
          No projects yet. Create one with <code>agiflow-lab</code> or the Python SDK.
        </div>
      ) : (
        <>
          <div className="agiflow-filters">
            <label className="agiflow-field">
              <span>Project</span>
              <select
                className="agiflow-project-select"
                data-testid="agiflow-project-select"
                value={project ?? ''}
                onChange={event => changeProject(event.target.value)}
              >
                {items.map(p => (
                  <option key={p.slug} value={p.slug}>
                    {p.name || p.slug}
                  </option>
                ))}
              </select>
            </label>
            <label className="agiflow-field agiflow-search">
              <searchIcon.react tag="span" className="agiflow-search-icon" />
              <input
                type="search"
                className="agiflow-search-input"
                data-testid="agiflow-search"
                placeholder="Search prompts"
                aria-label="Search prompts"
                value={search}
                onChange={event => setSearch(event.target.value)}
              />
            </label>
          </div>
          <div className="agiflow-body">
            {showList && (
              <div className="agiflow-list-pane">
                <PromptListSection
                  state={prompts}
                  query={query}
                  selected={selected?.name ?? null}
                  onSelect={setSelected}
                />
              </div>
            )}
            {mode === 'main' && (
              <div className="agiflow-detail-pane">
                {detail ?? <div className="agiflow-status">Select a prompt to see its latest version.</div>}
              </div>
            )}
            {mode === 'sidebar' && detail}
          </div>
        </>
      )}
    </div>
  );
}

interface PromptListSectionProps {
  state: RequestState<Page<'PromptSummary'>>;
  query: string;
  selected: string | null;
  onSelect: (prompt: PromptSummary) => void;
}

function PromptListSection({ state, query, selected, onSelect }: PromptListSectionProps): JSX.Element {
  if (state.error !== undefined) {
    return <ErrorNotice message={state.error} onRetry={state.reload} />;
  }
  if (state.data === undefined) {
    return <div className="agiflow-status">Loading prompts…</div>;
  }
  if (state.data.items.length === 0) {
    return (
      <div className="agiflow-status">
        {query
          ? `No prompt matches “${query}”.`
          : 'No prompts in this project yet. Create one with client.prompts.create(...).'}
      </div>
    );
  }
  return (
    <>
      <PromptList prompts={state.data.items} selected={selected} onSelect={onSelect} />
      {state.data.next_cursor && (
        <div className="agiflow-muted agiflow-more">
          Showing the first {state.data.items.length}; refine the search to find others.
        </div>
      )}
    </>
  );
}

function useDebounced<T>(value: T, delayMs: number): T {
  const [debounced, setDebounced] = React.useState(value);
  React.useEffect(() => {
    const timer = window.setTimeout(() => setDebounced(value), delayMs);
    return () => window.clearTimeout(timer);
  }, [value, delayMs]);
  return debounced;
}
