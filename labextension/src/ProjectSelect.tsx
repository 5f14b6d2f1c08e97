import * as React from 'react';

import { FilterSelect } from './FilterSelect';
import type { Project } from './types';

/**
 * The "Project" picker every view's filter row starts with. `onChange` gets
 * the slug; views clear their own selection there before switching.
 */
export function ProjectSelect(props: {
  projects: Project[];
  project: string;
  onChange: (slug: string) => void;
}): JSX.Element {
  const { projects, project, onChange } = props;
  return (
    <FilterSelect
      label="Project"
      testId="agiflow-project-select"
      value={project}
      choices={projects.map(p => ({ value: p.slug, label: p.name || p.slug }))}
      onChange={onChange}
    />
  );
}
