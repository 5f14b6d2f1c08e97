import { refreshIcon, ToolbarButtonComponent } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { ErrorNotice } from './ErrorNotice';
import { Role, roleIn } from './manageRoles';
import { ProjectSelect } from './ProjectSelect';
import type { Project } from './types';
import { ProjectChoice, useProjectChoice } from './useProjectChoice';
import { ViewToolbar } from './ViewToolbar';

export interface ManageContext {
  project: string;
  /** The caller's role in it (null: not a member). */
  role: Role | null;
  projects: Project[];
  /** Fetch the project list again and show `slug` (e.g. a project just created). */
  reloadProjects: (slug?: string) => void;
  /** Bumped by the Reload button: views refetch what they show. */
  generation: number;
}

export interface ManageFrameProps {
  api: AgiflowApi;
  title: string;
  className: string;
  testId: string;
  /**
   * The project choice, for a view that keeps state outside `children` (a live list whose socket
   * status is in the title row): the view calls `useProjectChoice` and hands its answer here.
   * Without it the frame calls `useProjectChoice` itself.
   */
  choice?: ProjectChoice;
  /** Shown in the view's toolbar after the reload button (a live socket's status, toggles). */
  toolbar?: React.ReactNode;
  /** Shown in the filter row after the project picker and role (the view's own filters). */
  filters?: React.ReactNode;
  /** Extra class and test id of the filter row. */
  filtersClassName?: string;
  filtersTestId?: string;
  /** Called by the reload button, with the project list and `generation`: state kept outside `children`. */
  onReload?: () => void;
  /** The view lays out its own body: without the managing views' list/detail pane styles (`agiflow-manage`). */
  ownLayout?: boolean;
  children: (context: ManageContext) => React.ReactNode;
}

/**
 * The frame every AGIFlow view shares: the view's toolbar items and a reload button (in JupyterLab's
 * toolbar above the view, see `ViewToolbar`),
 * the project picker (one choice for all views, see `useProjectChoice`), the caller's role in the
 * project and the view's filters in one row, and the states before a project is chosen.
 */
export function ManageFrame(props: ManageFrameProps): JSX.Element {
  return props.choice ? <Frame {...props} choice={props.choice} /> : <OwnChoiceFrame {...props} />;
}

function OwnChoiceFrame(props: ManageFrameProps): JSX.Element {
  const choice = useProjectChoice(props.api);
  return <Frame {...props} choice={choice} />;
}

function Frame(props: ManageFrameProps & { choice: ProjectChoice }): JSX.Element {
  const { title, className, testId, choice, toolbar, filters, filtersClassName, filtersTestId, onReload, children } =
    props;
  const { projects, project, setProject } = choice;
  const [generation, setGeneration] = React.useState(0);
  const [pending, setPending] = React.useState<string | null>(null);
  const items = projects.data?.items;

  React.useEffect(() => {
    if (pending !== null && items?.some(p => p.slug === pending)) {
      setProject(pending);
      setPending(null);
    }
  }, [items, pending, setProject]);

  const reloadList = projects.reload;
  const reloadProjects = React.useCallback(
    (slug?: string) => {
      setPending(slug ?? null);
      reloadList();
    },
    [reloadList]
  );

  const rootClass = props.ownLayout ? 'agiflow-browser' : 'agiflow-browser agiflow-manage';
  return (
    <div className={`${rootClass} ${className}`} data-testid={testId}>
      <ViewToolbar title={title}>
        <ToolbarButtonComponent
          icon={refreshIcon}
          tooltip="Reload"
          dataset={{ testid: 'agiflow-reload' }}
          onClick={() => {
            projects.reload();
            setGeneration(g => g + 1);
            onReload?.();
          }}
        />
        {toolbar}
      </ViewToolbar>
      {projects.error !== undefined ? (
        <ErrorNotice message={projects.error} onRetry={projects.reload} />
      ) : items === undefined ? (
        <div className="agiflow-status">Loading projects…</div>
      ) : items.length === 0 || project === null ? (
        <div className="agiflow-status">No projects yet.</div>
      ) : (
        <>
          <div
            className={filtersClassName ? `agiflow-filters ${filtersClassName}` : 'agiflow-filters'}
            data-testid={filtersTestId}
          >
            <ProjectSelect projects={items} project={project} onChange={setProject} />
            <span className="agiflow-muted agiflow-manage-role" data-testid="agiflow-manage-role">
              {roleLabel(roleIn(items, project))}
            </span>
            {filters}
          </div>
          {children({ project, role: roleIn(items, project), projects: items, reloadProjects, generation })}
        </>
      )}
    </div>
  );
}

function roleLabel(role: Role | null): string {
  return role === null ? 'Not a member' : `Your role: ${role}${role === 'viewer' ? ' (read only)' : ''}`;
}
