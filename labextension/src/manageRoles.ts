import type { Project } from './types';

/** The caller's role in a project, as `GET /projects` tells it (null: not a member, e.g. a server admin). */
export type Role = NonNullable<Project['role']>;

export const ROLES: Role[] = ['owner', 'editor', 'viewer'];

export function roleIn(projects: Project[] | undefined, slug: string | null): Role | null {
  return projects?.find(p => p.slug === slug)?.role ?? null;
}

/** Editors and owners write project content (prompts, datasets, …); viewers only read. */
export function canEdit(role: Role | null): boolean {
  return role === 'owner' || role === 'editor';
}

/** Members, keys and model connections hand out access or hold credentials: owners only. */
export function isOwner(role: Role | null): boolean {
  return role === 'owner';
}
