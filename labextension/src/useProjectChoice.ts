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

/**
 * The caller's projects and the one a view shows. The choice stays valid when
 * the list changes: it prefers `default`, else the first project.
 */
export function useProjectChoice(api: AgiflowApi): ProjectChoice {
  const projects = useRequest(() => api.listProjects(), [api]);
  const [project, setProject] = React.useState<string | null>(null);
  const items = projects.data?.items;
  React.useEffect(() => {
    if (items && !items.some(p => p.slug === project)) {
      setProject(pickProject(items));
    }
  }, [items, project]);
  return { projects, project, setProject };
}

function pickProject(projects: Project[]): string | null {
  if (projects.length === 0) {
    return null;
  }
  return projects.some(p => p.slug === DEFAULT_PROJECT) ? DEFAULT_PROJECT : projects[0].slug;
}
