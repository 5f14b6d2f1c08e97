/** The project, member, API key and audit routes the Settings view uses, typed from `schema.d.ts`. */
import type { AgiflowApi } from './api';
import type { components } from './schema';
import type { Page, Project } from './types';
import type { Role } from './manageRoles';

type Schemas = components['schemas'];

export type Member = Schemas['Member'];
export type ApiKey = Schemas['ApiKey'];
/** An API key as created: `secret` is in this answer only. */
export type CreatedKey = Schemas['CreatedKey'];
export type AuditEntry = Schemas['AuditEntry'];
export type ProjectCreate = Schemas['ProjectCreate'];

export class SettingsApi {
  constructor(private readonly api: AgiflowApi) {}

  createProject(body: ProjectCreate): Promise<Project> {
    return this.api.call('POST', ['projects'], body);
  }

  members(project: string): Promise<Schemas['MemberList']> {
    return this.api.read(['projects', project, 'members']);
  }

  /** Add a member or change their role. */
  setMember(project: string, user: string, role: Role): Promise<Member> {
    return this.api.call('PUT', ['projects', project, 'members', user], { role });
  }

  removeMember(project: string, user: string): Promise<void> {
    return this.api.call('DELETE', ['projects', project, 'members', user]);
  }

  keys(project: string): Promise<Schemas['KeyList']> {
    return this.api.read(['projects', project, 'keys']);
  }

  createKey(project: string, name: string, role: Role): Promise<CreatedKey> {
    return this.api.call('POST', ['projects', project, 'keys'], { name, role });
  }

  revokeKey(project: string, id: string): Promise<ApiKey> {
    return this.api.call('DELETE', ['projects', project, 'keys', id]);
  }

  audit(project: string, cursor: string | null, limit = 50): Promise<Page<'AuditEntry'>> {
    return this.api.read(['projects', project, 'audit'], { cursor, limit });
  }
}
