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

/**
 * Whether the API lets `role` read a project's API keys (owners) or its audit log (editors and owners).
 * A server admin who is not a member (null) reads both. A view asks only when it may, and says who may
 * otherwise, instead of showing the API's refusal as an error.
 */
export function mayRead(role: Role | null, what: 'keys' | 'audit'): boolean {
  return role === null || role === 'owner' || (what === 'audit' && role === 'editor');
}
