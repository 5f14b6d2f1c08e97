import { Notification } from '@jupyterlab/apputils';
import { Button } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { AgiflowApi } from './api';
import { EditableSection, EditDeleteButtons, Editing } from './EditableSection';
import { ErrorNotice } from './ErrorNotice';
import { ManageFrame } from './ManageFrame';
import { confirmAction } from './manageDialogs';
import { canEdit } from './manageRoles';
import { ScheduleFirings } from './ScheduleFirings';
import { ScheduleForm } from './ScheduleForm';
import { fireTime, firingText, gateText, relativeTime, targetText, timingText } from './scheduleFormat';
import { Schedule, SchedulesApi } from './schedulesApi';
import type { Page } from './types';
import { useAction } from './useAction';
import { useNow } from './useNow';
import { usePages } from './usePages';

/** Which views a firing's job or run opens in. */
export type OpenView = (view: 'jobs' | 'evals') => void;

/** The list is fetched again this often: ticks fire on their own and move the next fire times. */
const REFRESH_MS = 15_000;

/** Schedules: list, create, edit, pause and resume, run now, delete, and each one's firing history. */
export function SchedulesView({ api, openView }: { api: AgiflowApi; openView: OpenView }): JSX.Element {
  const schedules = React.useMemo(() => new SchedulesApi(api), [api]);
  return (
    <ManageFrame api={api} title="AGIFlow Schedules" className="agiflow-schedules" testId="agiflow-schedules">
      {({ project, role, generation }) => (
        <div className="agiflow-manage-body" key={project}>
          <SchedulesList
            api={schedules}
            project={project}
            editable={canEdit(role)}
            generation={generation}
            openView={openView}
          />
        </div>
      )}
    </ManageFrame>
  );
}

function SchedulesList(props: {
  api: SchedulesApi;
  project: string;
  editable: boolean;
  generation: number;
  openView: OpenView;
}): JSX.Element {
  const { api, project, editable, generation, openView } = props;
  const [changes, setChanges] = React.useState(0);
  const [ticks, setTicks] = React.useState(0);
  const [editing, setEditing] = React.useState<Editing<Schedule>>(null);
  const [history, setHistory] = React.useState<string | null>(null);
  const now = useNow(1000);
  const { busy, error, act } = useAction(project);
  const pages = usePages<Page<'Schedule'>, Schedule>(
    cursor => api.list(project, cursor),
    [api, project],
    `${generation}:${changes}:${ticks}`
  );
  // A refetch brings back the first page only: no automatic one once older pages are loaded.
  const follow = pages.first !== undefined && pages.items.length === pages.first.items.length;
  React.useEffect(() => {
    if (!follow) {
      return;
    }
    const timer = window.setInterval(() => setTicks(t => t + 1), REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [follow]);
  const changed = (): void => setChanges(c => c + 1);

  const pause = (s: Schedule): Promise<void> =>
    act(`pause:${s.name}`, async () => {
      await api.pause(project, s.name);
      Notification.info(`Schedule ${s.name} paused`, { autoClose: 3000 });
      changed();
    });
  const resume = (s: Schedule): Promise<void> =>
    act(`resume:${s.name}`, async () => {
      await api.resume(project, s.name);
      Notification.success(`Schedule ${s.name} resumed`, { autoClose: 3000 });
      changed();
    });
  const runNow = (s: Schedule): Promise<void> =>
    act(`run:${s.name}`, async () => {
      const firing = await api.runNow(project, s.name);
      const what = firing.job_id ? ` (job ${firing.job_id.slice(0, 8)})` : '';
      if (firing.outcome === 'failed') {
        Notification.error(`Schedule ${s.name} could not start: ${firing.reason ?? 'failed'}`, { autoClose: 5000 });
      } else {
        Notification.success(`Schedule ${s.name}: ${firingText(firing)}${what}`, { autoClose: 3000 });
      }
      setHistory(s.name);
      changed();
    });
  const remove = (s: Schedule): Promise<void> =>
    act(`delete:${s.name}`, async () => {
      const sure = await confirmAction(
        'Delete schedule',
        `Delete the schedule "${s.name}" and its firing history? The jobs and runs it started stay.`,
        'Delete'
      );
      if (!sure) {
        return;
      }
      await api.remove(project, s.name);
      Notification.success(`Schedule ${s.name} deleted`, { autoClose: 3000 });
      if (history === s.name) {
        setHistory(null);
      }
      changed();
    });

  return (
    <EditableSection<Schedule>
      title="Schedules"
      titleId="agiflow-schedules-title"
      mayEdit={editable}
      whoMay="Only the project's editors and owners add or change schedules."
      newLabel="New schedule"
      newTestId="agiflow-schedule-new"
      editing={editing}
      setEditing={setEditing}
      nameOf={s => s.name}
      form={(schedule, done) => <ScheduleForm api={api} project={project} schedule={schedule} onDone={done} />}
      onSaved={changed}
    >
      {error !== undefined && <ErrorNotice message={error} />}
      {pages.error !== undefined ? (
        <ErrorNotice message={pages.error} onRetry={changed} />
      ) : pages.first === undefined ? (
        <div className="agiflow-status">Loading schedules…</div>
      ) : pages.items.length === 0 ? (
        <div className="agiflow-status">No schedules in this project.</div>
      ) : (
        <table className="agiflow-table agiflow-manage-table" data-testid="agiflow-schedule-list">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Runs</th>
              <th scope="col">When</th>
              <th scope="col">State</th>
              <th scope="col">Next fire times</th>
              <th scope="col">Last firing</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {pages.items.map(s => (
              <React.Fragment key={s.id}>
                <tr data-testid="agiflow-schedule-row" data-schedule={s.name} data-paused={String(s.paused)}>
                  <td>
                    {s.name}
                    {s.description && <div className="agiflow-muted">{s.description}</div>}
                  </td>
                  <td>
                    <span data-testid="agiflow-schedule-target-text">{targetText(s)}</span>
                    {s.pass_rate_gate !== null && <div className="agiflow-muted">{gateText(s.pass_rate_gate)}</div>}
                  </td>
                  <td>
                    <code data-testid="agiflow-schedule-timing-text">{timingText(s)}</code>
                    <div className="agiflow-muted">
                      missed: {s.missed}
                      {s.missed === 'catch_up' ? ` (≤ ${s.max_catch_up})` : ''} · if running: {s.overlap}
                    </div>
                  </td>
                  <td>
                    <span
                      className={`agiflow-chip agiflow-manage-chip agiflow-manage-chip-${s.paused ? 'paused' : 'active'}`}
                      data-testid="agiflow-schedule-state"
                    >
                      {s.paused ? 'paused' : 'active'}
                    </span>
                    {s.missed_ticks > 0 && (
                      <div className="agiflow-muted" title="Ticks missed while no server ran, not fired by the policy">
                        {s.missed_ticks} missed
                      </div>
                    )}
                  </td>
                  <td data-testid="agiflow-schedule-next">
                    {s.next_fire_times.length === 0 ? (
                      <span className="agiflow-muted">—</span>
                    ) : (
                      <ol className="agiflow-schedule-next-times">
                        {s.next_fire_times.map((t, i) => (
                          <li key={t} title={t} className={i === 0 ? undefined : 'agiflow-muted'}>
                            {fireTime(t)}
                            {i === 0 && <span className="agiflow-muted"> ({relativeTime(t, now)})</span>}
                          </li>
                        ))}
                      </ol>
                    )}
                  </td>
                  <td data-testid="agiflow-schedule-last">
                    {s.last_firing ? (
                      <>
                        <span title={s.last_firing.tick}>{fireTime(s.last_firing.tick)}</span>
                        <div className="agiflow-muted">{firingText(s.last_firing)}</div>
                      </>
                    ) : (
                      <span className="agiflow-muted">never</span>
                    )}
                  </td>
                  <td>
                    <span className="agiflow-manage-actions">
                      <Button
                        small
                        minimal
                        data-testid="agiflow-schedule-history"
                        aria-expanded={history === s.name}
                        aria-label={`Firing history of ${s.name}`}
                        onClick={() => setHistory(history === s.name ? null : s.name)}
                      >
                        History
                      </Button>
                      {editable && (
                        <>
                          <Button
                            small
                            minimal
                            data-testid="agiflow-schedule-run"
                            aria-label={`Run ${s.name} now`}
                            disabled={busy !== null}
                            onClick={() => void runNow(s)}
                          >
                            Run now
                          </Button>
                          {s.paused ? (
                            <Button
                              small
                              minimal
                              data-testid="agiflow-schedule-resume"
                              aria-label={`Resume ${s.name}`}
                              disabled={busy !== null}
                              onClick={() => void resume(s)}
                            >
                              Resume
                            </Button>
                          ) : (
                            <Button
                              small
                              minimal
                              data-testid="agiflow-schedule-pause"
                              aria-label={`Pause ${s.name}`}
                              disabled={busy !== null}
                              onClick={() => void pause(s)}
                            >
                              Pause
                            </Button>
                          )}
                          <EditDeleteButtons
                            name={s.name}
                            disabled={busy !== null}
                            onEdit={() => setEditing({ mode: 'edit', item: s })}
                            onDelete={() => void remove(s)}
                            testIdPrefix="agiflow-schedule"
                          />
                        </>
                      )}
                    </span>
                  </td>
                </tr>
                {history === s.name && (
                  <tr>
                    <td colSpan={7}>
                      <ScheduleFirings
                        api={api}
                        project={project}
                        name={s.name}
                        refresh={`${changes}:${s.last_firing?.id ?? ''}`}
                        openView={openView}
                      />
                    </td>
                  </tr>
                )}
              </React.Fragment>
            ))}
          </tbody>
        </table>
      )}
      {pages.hasMore && (
        <Button small minimal disabled={pages.loading} onClick={pages.loadMore}>
          {pages.loading ? 'Loading…' : 'Load more'}
        </Button>
      )}
    </EditableSection>
  );
}
