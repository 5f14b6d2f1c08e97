import * as React from 'react';

import type { Project } from './types';

/**
 * The "Project" picker every view's filter row starts with. `onChange` gets
 * the slug; views clear their own selection there before switching.
 */
export function ProjectSelect(props: {
  projects: Project[];
  project: string;
  onChange: (slug: string) => void;
  fixed?: boolean;
}): JSX.Element {
  const { projects, project, onChange, fixed } = props;
  return (
    <label className={fixed ? 'agiflow-field agiflow-field-fixed' : 'agiflow-field'}>
      <span>Project</span>
      <select
        className="agiflow-project-select"
        data-testid="agiflow-project-select"
        value={project}
        onChange={event => onChange(event.target.value)}
      >
        {projects.map(p => (
          <option key={p.slug} value={p.slug}>
            {p.name || p.slug}
          </option>
        ))}
      </select>
    </label>
  );
}
