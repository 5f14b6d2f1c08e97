import { refreshIcon, searchIcon, ToolbarButtonComponent } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { ErrorNotice } from './ErrorNotice';
import { canEdit as mayEdit, roleIn } from './manageRoles';
import { ProjectSelect } from './ProjectSelect';
import { PromptDetail } from './PromptDetail';
import { PromptList } from './PromptList';
import { PromptsApi } from './promptsApi';
import { PromptVersionForm } from './PromptVersionForm';
import type { Page, PromptSummary } from './types';
import { useProjectChoice } from './useProjectChoice';
import { useAction } from './useAction';
import { PagesState, usePages } from './usePages';
import { ViewToolbar } from './ViewToolbar';

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

  const [generation, setGeneration] = React.useState(0);
  const prompts = usePages<Page<'PromptSummary'>, PromptSummary>(
    project === null ? null : cursor => api.listPrompts(project, { search: query, limit: PAGE_SIZE, cursor }),
    [api, project, query],
    generation
  );
  const reloadPrompts = React.useCallback(() => setGeneration(g => g + 1), []);

  // Keep the selection in step with the list (a refresh may bring a new version).
  React.useEffect(() => {
    if (selected && prompts.first) {
      const fresh = prompts.items.find(p => p.name === selected.name);
      if (fresh && fresh !== selected) {
        setSelected(fresh);
      }
    }
  }, [prompts.first, prompts.items, selected]);

  const refresh = (): void => {
    projects.reload();
    reloadPrompts();
  };
  const changeProject = (slug: string): void => {
    setSelected(null);
    setCreating(false);
    setProject(slug);
  };

  const canEdit = mayEdit(roleIn(items, project));
  const [creating, setCreating] = React.useState(false);
  const detail =
    creating && project !== null ? (
      <NewPrompt
        api={api}
        project={project}
        onCreated={made => {
          setCreating(false);
          reloadPrompts();
          setSelected(made);
        }}
        onCancel={() => setCreating(false)}
      />
    ) : selected && project !== null ? (
      <PromptDetail
        api={api}
        project={project}
        prompt={selected}
        canEdit={canEdit}
        onChanged={reloadPrompts}
        onBack={mode === 'sidebar' ? () => setSelected(null) : undefined}
      />
    ) : null;
  const showList = mode === 'main' || detail === null;

  return (
    <div className={`agiflow-browser agiflow-mode-${mode}`} data-testid="agiflow-browser">
      <ViewToolbar title="AGIFlow Prompts">
        <ToolbarButtonComponent
          icon={refreshIcon}
          tooltip="Reload"
          dataset={{ testid: 'agiflow-reload' }}
          onClick={refresh}
        />
        {canEdit && (
          <button
            type="button"
            className="jp-mod-styled jp-mod-accept agiflow-new-button"
            data-testid="agiflow-new-prompt"
            onClick={() => {
              setSelected(null);
              setCreating(true);
            }}
          >
            New prompt
          </button>
        )}
      </ViewToolbar>
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
            <ProjectSelect projects={items} project={project ?? ''} onChange={changeProject} />
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
                  onSelect={p => {
                    setCreating(false);
                    setSelected(p);
                  }}
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
  state: PagesState<Page<'PromptSummary'>, PromptSummary>;
  query: string;
  selected: string | null;
  onSelect: (prompt: PromptSummary) => void;
}

function PromptListSection({ state, query, selected, onSelect }: PromptListSectionProps): JSX.Element {
  if (state.error !== undefined && state.first === undefined) {
    return <ErrorNotice message={state.error} />;
  }
  if (state.first === undefined) {
    return <div className="agiflow-status">Loading prompts…</div>;
  }
  if (state.items.length === 0) {
    return (
      <div className="agiflow-status">
        {query
          ? `No prompt matches “${query}”.`
          : 'No prompts in this project yet: New prompt, or client.prompts.create(...) from a notebook.'}
      </div>
    );
  }
  return (
    <>
      <PromptList prompts={state.items} selected={selected} onSelect={onSelect} />
      {state.error !== undefined && <ErrorNotice message={state.error} />}
      {state.hasMore && (
        <button
          type="button"
          className="agiflow-link-button agiflow-more"
          data-testid="agiflow-prompts-more"
          disabled={state.loading}
          onClick={state.loadMore}
        >
          {state.loading ? 'Loading…' : 'Load more prompts'}
        </button>
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

/** A new prompt: its name and description, then its first version like any other. */
function NewPrompt(props: {
  api: AgiflowApi;
  project: string;
  onCreated: (prompt: PromptSummary) => void;
  onCancel: () => void;
}): JSX.Element {
  const { api, project, onCreated, onCancel } = props;
  const prompts = React.useMemo(() => new PromptsApi(api), [api]);
  const [name, setName] = React.useState('');
  const [description, setDescription] = React.useState('');
  const { busy, error, act } = useAction(project);
  return (
    <section className="agiflow-prompt-detail" data-testid="agiflow-new-prompt-form">
      <header className="agiflow-detail-header">
        <h2 className="agiflow-detail-title">New prompt</h2>
      </header>
      <PromptVersionForm
        from={null}
        typeFixed={false}
        submitLabel="Create"
        busy={busy !== null}
        error={error}
        onCancel={onCancel}
        onSubmit={draft =>
          void act('create', async () => {
            await prompts.create(project, { name: name.trim(), description, ...draft });
            onCreated(await api.read<PromptSummary>(['projects', project, 'prompts', name.trim(), 'summary']));
          })
        }
      >
        <label className="agiflow-form-field">
          <span>Name</span>
          <input
            data-testid="agiflow-prompt-name-input"
            value={name}
            required
            placeholder="e.g. support-answer"
            onChange={event => setName(event.target.value)}
          />
        </label>
        <label className="agiflow-form-field">
          <span>Description</span>
          <input value={description} onChange={event => setDescription(event.target.value)} />
        </label>
      </PromptVersionForm>
    </section>
  );
}
