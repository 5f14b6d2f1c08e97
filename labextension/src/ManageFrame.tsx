import { refreshIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { ErrorNotice } from './ErrorNotice';
import { Role, roleIn } from './manageRoles';
import { ProjectSelect } from './ProjectSelect';
import type { Project } from './types';
import { useProjectChoice } from './useProjectChoice';

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
  children: (context: ManageContext) => React.ReactNode;
}

/**
 * What the managing views (Datasets, Models, Settings) share: a title row with
 * a reload button, the project picker, and the caller's role in the project.
 */
export function ManageFrame({ api, title, className, testId, children }: ManageFrameProps): JSX.Element {
  const { projects, project, setProject } = useProjectChoice(api);
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

  return (
    <div className={`agiflow-browser agiflow-manage ${className}`} data-testid={testId}>
      <div className="agiflow-toolbar">
        <span className="agiflow-title">{title}</span>
        <span className="agiflow-toolbar-end">
          <button
            type="button"
            className="agiflow-icon-button"
            title="Reload"
            aria-label="Reload"
            onClick={() => {
              projects.reload();
              setGeneration(g => g + 1);
            }}
          >
            <refreshIcon.react tag="span" />
          </button>
        </span>
      </div>
      {projects.error !== undefined ? (
        <ErrorNotice message={projects.error} onRetry={projects.reload} />
      ) : items === undefined ? (
        <div className="agiflow-status">Loading projects…</div>
      ) : items.length === 0 || project === null ? (
        <div className="agiflow-status">No projects yet.</div>
      ) : (
        <>
          <div className="agiflow-filters">
            <ProjectSelect projects={items} project={project} onChange={setProject} fixed />
            <span className="agiflow-muted agiflow-manage-role" data-testid="agiflow-manage-role">
              {roleLabel(roleIn(items, project))}
            </span>
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
