import { Notification } from '@jupyterlab/apputils';
import { Button, HTMLSelect, InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { ErrorNotice } from './ErrorNotice';
import { ManageFrame } from './ManageFrame';
import { confirmAction, shortTime } from './manageDialogs';
import { isOwner, mayRead, Role, ROLES } from './manageRoles';
import { SettingsKeys } from './SettingsKeys';
import { AuditEntry, SettingsApi } from './settingsApi';
import type { Project } from './types';
import { useAction } from './useAction';
import { usePages } from './usePages';
import { useRequest } from './useRequest';

/** Project settings: projects, members and roles, API keys, the audit log. */
export function SettingsView({ api }: { api: AgiflowApi }): JSX.Element {
  const settings = React.useMemo(() => new SettingsApi(api), [api]);
  const [changes, setChanges] = React.useState(0);
  const changed = React.useCallback(() => setChanges(c => c + 1), []);
  return (
    <ManageFrame api={api} title="AGIFlow Project settings" className="agiflow-settings" testId="agiflow-settings">
      {({ project, role, projects, reloadProjects, generation }) => (
        <div className="agiflow-manage-body">
          <ProjectsSection
            api={settings}
            projects={projects}
            onCreated={slug => {
              reloadProjects(slug);
              changed();
            }}
          />
          <MembersSection
            api={settings}
            project={project}
            owner={isOwner(role)}
            generation={generation}
            onChanged={changed}
          />
          <SettingsKeys
            api={settings}
            project={project}
            owner={isOwner(role)}
            readable={mayRead(role, 'keys')}
            generation={generation}
            onChanged={changed}
          />
          <AuditSection
            api={settings}
            project={project}
            readable={mayRead(role, 'audit')}
            refresh={`${generation}:${changes}`}
          />
        </div>
      )}
    </ManageFrame>
  );
}

function ProjectsSection(props: {
  api: SettingsApi;
  projects: Project[];
  onCreated: (slug: string) => void;
}): JSX.Element {
  const { api, projects, onCreated } = props;
  const [slug, setSlug] = React.useState('');
  const [name, setName] = React.useState('');
  const { busy, error, act } = useAction('projects');
  return (
    <section className="agiflow-manage-section" aria-labelledby="agiflow-settings-projects-title">
      <h3 id="agiflow-settings-projects-title">Projects</h3>
      <table className="agiflow-table agiflow-manage-table" data-testid="agiflow-project-list">
        <thead>
          <tr>
            <th scope="col">Project</th>
            <th scope="col">Name</th>
            <th scope="col">Your role</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {projects.map(p => (
            <tr key={p.slug}>
              <td>
                <code>{p.slug}</code>
              </td>
              <td>{p.name}</td>
              <td>{p.role ?? '—'}</td>
              <td title={p.created_at}>
                {shortTime(p.created_at)} <span className="agiflow-muted">by {p.created_by}</span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        className="agiflow-manage-form"
        data-testid="agiflow-project-create"
        onSubmit={event => {
          event.preventDefault();
          void act('create', async () => {
            const created = await api.createProject({ slug: slug.trim(), name: name.trim() || slug.trim() });
            Notification.success(`Project ${created.slug} created: you are its owner`, { autoClose: 3000 });
            setSlug('');
            setName('');
            onCreated(created.slug);
          });
        }}
      >
        <label className="agiflow-field">
          <span>New project</span>
          <InputGroup
            placeholder="slug, e.g. support-bot"
            pattern="[a-z0-9][a-z0-9\-]{0,62}"
            title="Lower-case letters, digits and dashes"
            value={slug}
            required
            onChange={event => setSlug(event.target.value)}
          />
        </label>
        <label className="agiflow-field">
          <span>Name</span>
          <InputGroup
            placeholder="Support bot"
            value={name}
            maxLength={200}
            onChange={event => setName(event.target.value)}
          />
        </label>
        <Button type="submit" className="jp-mod-accept" disabled={busy !== null || !slug.trim()}>
          Create project
        </Button>
      </form>
      {error !== undefined && <ErrorNotice message={error} />}
    </section>
  );
}

function MembersSection(props: {
  api: SettingsApi;
  project: string;
  owner: boolean;
  generation: number;
  onChanged: () => void;
}): JSX.Element {
  const { api, project, owner, generation, onChanged } = props;
  const members = useRequest(() => api.members(project), [api, project, generation]);
  const { busy, error, act } = useAction(project);
  const [user, setUser] = React.useState('');
  const [role, setRole] = React.useState<Role>('viewer');

  const setMember = (who: string, to: Role, done?: () => void): Promise<void> =>
    act(`set:${who}`, async () => {
      await api.setMember(project, who, to);
      done?.();
      Notification.success(`${who} is now ${to} of ${project}`, { autoClose: 3000 });
      members.reload();
      onChanged();
    });

  const remove = (who: string): Promise<void> =>
    act(`remove:${who}`, async () => {
      if (!(await confirmAction('Remove member', `Remove ${who} from ${project}?`, 'Remove'))) {
        return;
      }
      await api.removeMember(project, who);
      Notification.success(`${who} removed from ${project}`, { autoClose: 3000 });
      members.reload();
      onChanged();
    });

  return (
    <section className="agiflow-manage-section" aria-labelledby="agiflow-settings-members-title">
      <h3 id="agiflow-settings-members-title">Members and roles</h3>
      {!owner && <p className="agiflow-muted">Only the project's owners add members or change roles.</p>}
      {error !== undefined && <ErrorNotice message={error} />}
      {members.error !== undefined ? (
        <ErrorNotice message={members.error} onRetry={members.reload} />
      ) : members.data === undefined ? (
        <div className="agiflow-status">Loading members…</div>
      ) : (
        <table className="agiflow-table agiflow-manage-table" data-testid="agiflow-member-list">
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Role</th>
              {owner && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {members.data.items.map(m => (
              <tr key={m.user} data-testid="agiflow-member-row">
                <td>{m.user}</td>
                <td>
                  {owner ? (
                    <HTMLSelect
                      aria-label={`Role of ${m.user}`}
                      value={m.role}
                      options={ROLES}
                      disabled={busy !== null}
                      onChange={event => void setMember(m.user, event.target.value as Role)}
                    />
                  ) : (
                    m.role
                  )}
                </td>
                {owner && (
                  <td>
                    <Button
                      small
                      minimal
                      className="agiflow-manage-danger"
                      aria-label={`Remove ${m.user}`}
                      disabled={busy !== null}
                      onClick={() => void remove(m.user)}
                    >
                      Remove
                    </Button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {owner && (
        <form
          className="agiflow-manage-form"
          data-testid="agiflow-member-add"
          onSubmit={event => {
            event.preventDefault();
            void setMember(user.trim(), role, () => setUser(''));
          }}
        >
          <label className="agiflow-field">
            <span>User</span>
            <InputGroup placeholder="user name" value={user} required onChange={event => setUser(event.target.value)} />
          </label>
          <label className="agiflow-field agiflow-field-fixed">
            <span>Role</span>
            <HTMLSelect value={role} options={ROLES} onChange={event => setRole(event.target.value as Role)} />
          </label>
          <Button type="submit" className="jp-mod-accept" disabled={busy !== null || !user.trim()}>
            Add member
          </Button>
        </form>
      )}
    </section>
  );
}

function AuditSection(props: { api: SettingsApi; project: string; readable: boolean; refresh: string }): JSX.Element {
  const { api, project, readable, refresh } = props;
  const pages = usePages<Awaited<ReturnType<SettingsApi['audit']>>, AuditEntry>(
    readable ? cursor => api.audit(project, cursor) : null,
    [api, project, readable],
    refresh
  );
  return (
    <section className="agiflow-manage-section" aria-labelledby="agiflow-settings-audit-title">
      <h3 id="agiflow-settings-audit-title">Audit log</h3>
      {pages.error !== undefined && <ErrorNotice message={pages.error} />}
      {!readable ? (
        <p className="agiflow-muted" data-testid="agiflow-audit-editors-only">
          Only the project's editors and owners see its audit log.
        </p>
      ) : pages.items.length === 0 ? (
        <div className="agiflow-status">{pages.loading ? 'Loading the audit log…' : 'Nothing recorded yet.'}</div>
      ) : (
        <table className="agiflow-table agiflow-manage-table" data-testid="agiflow-audit-list">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">Action</th>
              <th scope="col">Resource</th>
            </tr>
          </thead>
          <tbody>
            {pages.items.map(entry => (
              <tr key={entry.id} data-testid="agiflow-audit-row">
                <td title={entry.at}>{shortTime(entry.at)}</td>
                <td>{entry.actor}</td>
                <td>{entry.action}</td>
                <td>
                  {entry.resource_type} <code>{entry.resource_id}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pages.hasMore && (
        <div className="agiflow-more">
          <Button minimal disabled={pages.loading} onClick={pages.loadMore}>
            {pages.loading ? 'Loading…' : 'Load more'}
          </Button>
        </div>
      )}
    </section>
  );
}
