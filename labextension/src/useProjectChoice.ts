import * as React from 'react';

import type { AgiflowApi } from './api';
import type { Project, ProjectList } from './types';
import { RequestState, useRequest } from './useRequest';

const DEFAULT_PROJECT = 'default';

export interface ProjectChoice {
  projects: RequestState<ProjectList>;
  project: string | null;
  setProject: (slug: string) => void;
}

/** The project every view shows: one choice for the whole JupyterLab page, so views never disagree. */
const shared = {
  project: null as string | null,
  listeners: new Set<() => void>()
};

function choose(slug: string | null): void {
  if (shared.project !== slug) {
    shared.project = slug;
    shared.listeners.forEach(listener => listener());
  }
}

function subscribe(listener: () => void): () => void {
  shared.listeners.add(listener);
  return () => shared.listeners.delete(listener);
}

/**
 * The caller's projects and the one the views show (the same in every view: choosing in one moves them
 * all). The choice stays valid when the list changes: it prefers `default`, else the first project.
 */
export function useProjectChoice(api: AgiflowApi): ProjectChoice {
  const projects = useRequest(() => api.listProjects(), [api]);
  const project = React.useSyncExternalStore(subscribe, () => shared.project);
  const items = projects.data?.items;
  const reloadedFor = React.useRef<string | null>(null);
  const reload = React.useRef(projects.reload);
  reload.current = projects.reload;
  React.useEffect(() => {
    if (!items) {
      return;
    }
    if (project === null) {
      choose(pickProject(items));
    } else if (!items.some(p => p.slug === project)) {
      if (reloadedFor.current !== project) {
        reloadedFor.current = project; // chosen in another view (a project just made there): this list is stale
        reload.current();
      } else {
        choose(pickProject(items)); // still not there: gone, or not this user's
      }
    }
  }, [items, project]);
  return { projects, project, setProject: choose };
}

function pickProject(projects: Project[]): string | null {
  if (projects.length === 0) {
    return null;
  }
  return projects.some(p => p.slug === DEFAULT_PROJECT) ? DEFAULT_PROJECT : projects[0].slug;
}
