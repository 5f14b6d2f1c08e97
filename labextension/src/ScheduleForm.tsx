import { Notification } from '@jupyterlab/apputils';
import { Button, HTMLSelect, InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import { errorMessage } from './api';
import { ErrorNotice } from './ErrorNotice';
import { fieldErrors, ScheduleField } from './scheduleFormat';
import {
  MISSED_POLICIES,
  MissedPolicy,
  OVERLAP_POLICIES,
  OverlapPolicy,
  RunSubmit,
  Schedule,
  ScheduleCreate,
  SchedulesApi,
  ScheduleTarget,
  ScheduleUpdate
} from './schedulesApi';

export interface ScheduleFormProps {
  api: SchedulesApi;
  project: string;
  /** null: a new schedule */
  schedule: Schedule | null;
  onDone: (saved: boolean) => void;
}

type Timing = 'interval' | 'cron';

/** What an evaluation target looks like, for a new one: edit the names. */
const EVAL_EXAMPLE = {
  prompt: { name: 'qa', label: 'production' },
  dataset: { name: 'qa-set' },
  model: { connection: 'echo' },
  evaluators: [{ type: 'exact_match' }]
};

const browserZone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

/** An ISO time as a `datetime-local` value (the user's time zone), and back. */
function toLocalInput(iso: string | null): string {
  if (!iso) {
    return '';
  }
  const d = new Date(iso);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Parsed JSON object text, or the message why not. */
function jsonObject(text: string): { value?: Record<string, unknown>; problem?: string } {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return { problem: 'must be a JSON object' };
    }
    return { value: value as Record<string, unknown> };
  } catch (reason) {
    return { problem: `not valid JSON: ${errorMessage(reason)}` };
  }
}

/**
 * Create or edit a schedule: a notebook job or an evaluation run, on an interval or a cron expression in a
 * time zone, with the missed-tick and overlap policies. A refused save shows each message next to its field.
 * An edit sends only what changed (a new target or timing is checked, and re-timed, by the server).
 */
export function ScheduleForm({ api, project, schedule, onDone }: ScheduleFormProps): JSX.Element {
  const editing = schedule !== null;
  const [name, setName] = React.useState(schedule?.name ?? '');
  const [description, setDescription] = React.useState(schedule?.description ?? '');
  const [target, setTarget] = React.useState<ScheduleTarget>(schedule?.target ?? 'job');
  const [notebook, setNotebook] = React.useState(schedule?.job?.notebook ?? 'builtin:hello');
  const [parameters, setParameters] = React.useState(JSON.stringify(schedule?.job?.parameters ?? {}));
  const [timeout, setTimeoutText] = React.useState(String(schedule?.job?.timeout_seconds ?? ''));
  const [evalText, setEvalText] = React.useState(JSON.stringify(schedule?.eval ?? EVAL_EXAMPLE, null, 2));
  const [timing, setTiming] = React.useState<Timing>(schedule?.cron ? 'cron' : 'interval');
  const [interval, setIntervalText] = React.useState(String(schedule?.interval_seconds ?? 3600));
  const [cron, setCron] = React.useState(schedule?.cron ?? '0 3 * * *');
  const [timezone, setTimezone] = React.useState(schedule?.timezone ?? browserZone());
  const [startAt, setStartAt] = React.useState(toLocalInput(schedule?.start_at ?? null));
  const [missed, setMissed] = React.useState<MissedPolicy>(schedule?.missed ?? 'skip');
  const [maxCatchUp, setMaxCatchUp] = React.useState(String(schedule?.max_catch_up ?? 10));
  const [grace, setGrace] = React.useState(String(schedule?.misfire_grace_seconds ?? 60));
  const [overlap, setOverlap] = React.useState<OverlapPolicy>(schedule?.overlap ?? 'allow');
  const [gate, setGate] = React.useState(
    schedule?.pass_rate_gate === null || schedule?.pass_rate_gate === undefined ? '' : String(schedule.pass_rate_gate)
  );
  const [paused, setPaused] = React.useState(false);
  const [busy, setBusy] = React.useState(false);
  const [errors, setErrors] = React.useState<Partial<Record<ScheduleField, string>>>({});
  const [general, setGeneral] = React.useState<string | undefined>();

  const number = (text: string): number | null => (text.trim() === '' ? null : Number(text));

  /** The whole schedule as a create body, or the fields the form itself finds wrong. */
  const build = (): { body?: Omit<ScheduleCreate, 'name'>; problems?: Partial<Record<ScheduleField, string>> } => {
    const problems: Partial<Record<ScheduleField, string>> = {};
    const body: Omit<ScheduleCreate, 'name'> = {
      description: description.trim(),
      missed,
      misfire_grace_seconds: number(grace),
      overlap,
      start_at: startAt ? new Date(startAt).toISOString() : null
    };
    if (missed === 'catch_up') {
      body.max_catch_up = number(maxCatchUp);
    }
    if (timing === 'cron') {
      body.cron = cron.trim();
      body.timezone = timezone.trim() || 'UTC';
      body.interval_seconds = null;
    } else {
      body.interval_seconds = number(interval);
      body.cron = null;
    }
    if (target === 'job') {
      const params = jsonObject(parameters.trim() || '{}');
      if (params.problem) {
        problems.parameters = params.problem;
      }
      // An edit keeps what the form does not show (max_attempts).
      const kept = schedule?.job ? { max_attempts: schedule.job.max_attempts } : {};
      body.job = { ...kept, notebook: notebook.trim(), parameters: params.value ?? {} };
      const seconds = number(timeout);
      if (seconds !== null) {
        body.job.timeout_seconds = seconds;
      }
      body.eval = null;
      body.pass_rate_gate = null; // a gate needs an evaluation target
    } else {
      const run = jsonObject(evalText);
      if (run.problem) {
        problems.eval = run.problem;
      }
      body.eval = (run.value ?? {}) as RunSubmit;
      body.job = null;
      body.pass_rate_gate = number(gate);
    }
    return Object.keys(problems).length ? { problems } : { body };
  };

  /** An edit: only the fields that differ from the schedule as loaded (timing and target as a whole). */
  const changes = (current: Schedule, body: Omit<ScheduleCreate, 'name'>): ScheduleUpdate => {
    const update: ScheduleUpdate = {};
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
    if (body.description !== current.description) {
      update.description = body.description;
    }
    if (
      body.cron !== current.cron ||
      body.interval_seconds !== current.interval_seconds ||
      (body.cron !== null && body.timezone !== current.timezone)
    ) {
      update.cron = body.cron;
      update.interval_seconds = body.interval_seconds;
      if (body.cron !== null) {
        update.timezone = body.timezone;
      }
    }
    // The field shows minutes: unchanged there, the stored start (to the second) stays.
    if (startAt !== toLocalInput(current.start_at)) {
      update.start_at = body.start_at;
    }
    const jobChanged = (): boolean =>
      body.job?.notebook !== current.job?.notebook ||
      !same(body.job?.parameters, current.job?.parameters) ||
      body.job?.timeout_seconds !== current.job?.timeout_seconds;
    if (target !== current.target || (target === 'job' ? jobChanged() : !same(body.eval, current.eval))) {
      if (target === 'job') {
        update.job = body.job;
      } else {
        update.eval = body.eval;
      }
    }
    if ((body.pass_rate_gate ?? null) !== current.pass_rate_gate) {
      update.pass_rate_gate = body.pass_rate_gate;
    }
    for (const key of ['missed', 'misfire_grace_seconds', 'overlap', 'max_catch_up'] as const) {
      if (body[key] !== undefined && body[key] !== current[key]) {
        (update as Record<string, unknown>)[key] = body[key];
      }
    }
    return update;
  };

  const submit = async (event: React.FormEvent): Promise<void> => {
    event.preventDefault();
    setErrors({});
    setGeneral(undefined);
    const { body, problems } = build();
    if (!body) {
      setErrors(problems ?? {});
      return;
    }
    setBusy(true);
    try {
      if (editing) {
        await api.update(project, schedule.name, changes(schedule, body));
        Notification.success(`Schedule ${schedule.name} saved`, { autoClose: 3000 });
      } else {
        await api.create(project, { ...body, name: name.trim(), paused });
        Notification.success(`Schedule ${name.trim()} created`, { autoClose: 3000 });
      }
      onDone(true);
    } catch (reason) {
      const found = fieldErrors(reason);
      setErrors(found);
      setGeneral(Object.keys(found).length ? 'Not saved: see the fields marked.' : errorMessage(reason));
    } finally {
      setBusy(false);
    }
  };

  /** A field's message from the last save, next to it (and named by the field's aria-describedby). */
  const problem = (field: ScheduleField): JSX.Element | null =>
    errors[field] === undefined ? null : (
      <span
        className="agiflow-schedule-field-error"
        id={`agiflow-schedule-error-${field}`}
        data-testid={`agiflow-schedule-error-${field}`}
        role="alert"
      >
        {errors[field]}
      </span>
    );
  const described = (field: ScheduleField): { 'aria-invalid'?: boolean; 'aria-describedby'?: string } =>
    errors[field] === undefined ? {} : { 'aria-invalid': true, 'aria-describedby': `agiflow-schedule-error-${field}` };

  return (
    <form
      className="agiflow-manage-form agiflow-manage-form-stacked agiflow-schedule-form"
      data-testid="agiflow-schedule-form"
      onSubmit={event => void submit(event)}
      noValidate
    >
      <h4 className="agiflow-schedule-wide">{editing ? `Edit ${schedule.name}` : 'New schedule'}</h4>
      <div className="agiflow-schedule-cell">
        <label className="agiflow-field">
          <span>Name</span>
          <InputGroup
            data-testid="agiflow-schedule-name"
            value={name}
            disabled={editing}
            title="Letters, digits, spaces, '_', '.', '-'"
            onChange={event => setName(event.target.value)}
            {...described('name')}
          />
        </label>
        {problem('name')}
      </div>
      <div className="agiflow-schedule-cell">
        <label className="agiflow-field">
          <span>Description</span>
          <InputGroup value={description} maxLength={2000} onChange={event => setDescription(event.target.value)} />
        </label>
        {problem('description')}
      </div>
      <div className="agiflow-schedule-cell">
        <label className="agiflow-field">
          <span>Runs</span>
          <HTMLSelect
            data-testid="agiflow-schedule-target"
            value={target}
            options={[
              { value: 'job', label: 'a notebook job' },
              { value: 'eval', label: 'an evaluation run' }
            ]}
            onChange={event => setTarget(event.target.value as ScheduleTarget)}
          />
        </label>
        {problem('target')}
      </div>
      {target === 'job' ? (
        <>
          <div className="agiflow-schedule-cell">
            <label className="agiflow-field">
              <span>Notebook</span>
              <InputGroup
                data-testid="agiflow-schedule-notebook"
                placeholder="builtin:hello or contents:reports/daily.ipynb"
                value={notebook}
                onChange={event => setNotebook(event.target.value)}
                {...described('notebook')}
              />
            </label>
            {problem('notebook')}
          </div>
          <div className="agiflow-schedule-cell">
            <label className="agiflow-field">
              <span>Parameters</span>
              <textarea
                rows={2}
                data-testid="agiflow-schedule-parameters"
                placeholder='{"name": "world"}'
                value={parameters}
                onChange={event => setParameters(event.target.value)}
                {...described('parameters')}
              />
            </label>
            {problem('parameters')}
          </div>
          <div className="agiflow-schedule-cell">
            <label className="agiflow-field">
              <span>Timeout (s)</span>
              <InputGroup
                type="number"
                min={1}
                placeholder="default 3600"
                value={timeout}
                onChange={event => setTimeoutText(event.target.value)}
                {...described('timeout_seconds')}
              />
            </label>
            {problem('timeout_seconds')}
          </div>
        </>
      ) : (
        <>
          <div className="agiflow-schedule-cell agiflow-schedule-wide">
            <label className="agiflow-field">
              <span>Evaluation run</span>
              <textarea
                rows={8}
                data-testid="agiflow-schedule-eval"
                title="The body of a new evaluation run: a prompt label and a dataset without a version resolve at each tick"
                value={evalText}
                onChange={event => setEvalText(event.target.value)}
                {...described('eval')}
              />
            </label>
            {problem('eval')}
          </div>
          <div className="agiflow-schedule-cell">
            <label className="agiflow-field">
              <span>Pass-rate gate</span>
              <InputGroup
                type="number"
                min={0}
                max={1}
                step={0.01}
                data-testid="agiflow-schedule-gate"
                placeholder="0–1, e.g. 0.8 (empty: no gate)"
                title="A run that ends below this pass rate is announced to the project's channels"
                value={gate}
                onChange={event => setGate(event.target.value)}
                {...described('pass_rate_gate')}
              />
            </label>
            {problem('pass_rate_gate')}
          </div>
        </>
      )}
      <div className="agiflow-schedule-cell">
        <label className="agiflow-field">
          <span>Timing</span>
          <HTMLSelect
            data-testid="agiflow-schedule-timing"
            value={timing}
            options={[
              { value: 'interval', label: 'every N seconds' },
              { value: 'cron', label: 'cron expression' }
            ]}
            onChange={event => setTiming(event.target.value as Timing)}
          />
        </label>
      </div>
      {timing === 'interval' ? (
        <>
          <div className="agiflow-schedule-cell">
            <label className="agiflow-field">
              <span>Interval (s)</span>
              <InputGroup
                type="number"
                min={1}
                data-testid="agiflow-schedule-interval"
                value={interval}
                onChange={event => setIntervalText(event.target.value)}
                {...described('interval_seconds')}
              />
            </label>
            {problem('interval_seconds')}
          </div>
        </>
      ) : (
        <>
          <div className="agiflow-schedule-cell">
            <label className="agiflow-field">
              <span>Cron</span>
              <InputGroup
                data-testid="agiflow-schedule-cron"
                placeholder="minute hour day-of-month month day-of-week, e.g. 0 3 * * *"
                value={cron}
                onChange={event => setCron(event.target.value)}
                {...described('cron')}
              />
            </label>
            {problem('cron')}
          </div>
          <div className="agiflow-schedule-cell">
            <label className="agiflow-field">
              <span>Time zone</span>
              <InputGroup
                data-testid="agiflow-schedule-timezone"
                placeholder="UTC, Europe/Berlin, …"
                value={timezone}
                onChange={event => setTimezone(event.target.value)}
                {...described('timezone')}
              />
            </label>
            {problem('timezone')}
          </div>
        </>
      )}
      <div className="agiflow-schedule-cell">
        <label className="agiflow-field">
          <span>Start at</span>
          <input
            type="datetime-local"
            className="agiflow-schedule-datetime"
            title="No tick before this; an interval counts from it (empty: one interval from now)"
            value={startAt}
            onChange={event => setStartAt(event.target.value)}
            {...described('start_at')}
          />
        </label>
        {problem('start_at')}
      </div>
      <div className="agiflow-schedule-cell">
        <label className="agiflow-field">
          <span>Missed ticks</span>
          <HTMLSelect
            data-testid="agiflow-schedule-missed"
            title="Ticks missed while no server ran"
            value={missed}
            options={MISSED_POLICIES}
            onChange={event => setMissed(event.target.value as MissedPolicy)}
            {...described('missed')}
          />
        </label>
        {problem('missed')}
      </div>
      {missed === 'catch_up' && (
        <>
          <div className="agiflow-schedule-cell">
            <label className="agiflow-field">
              <span>Catch up at most</span>
              <InputGroup
                type="number"
                min={1}
                max={100}
                value={maxCatchUp}
                onChange={event => setMaxCatchUp(event.target.value)}
                {...described('max_catch_up')}
              />
            </label>
            {problem('max_catch_up')}
          </div>
        </>
      )}
      <div className="agiflow-schedule-cell">
        <label className="agiflow-field">
          <span>Late by (s)</span>
          <InputGroup
            type="number"
            min={1}
            title="A tick this late still counts as on time and fires"
            value={grace}
            onChange={event => setGrace(event.target.value)}
            {...described('misfire_grace_seconds')}
          />
        </label>
        {problem('misfire_grace_seconds')}
      </div>
      <div className="agiflow-schedule-cell">
        <label className="agiflow-field">
          <span>If still running</span>
          <HTMLSelect
            data-testid="agiflow-schedule-overlap"
            title="While the previous firing still runs"
            value={overlap}
            options={OVERLAP_POLICIES}
            onChange={event => setOverlap(event.target.value as OverlapPolicy)}
            {...described('overlap')}
          />
        </label>
        {problem('overlap')}
      </div>
      {!editing && (
        <div className="agiflow-schedule-cell">
          <label className="agiflow-field agiflow-manage-check">
            <span />
            <span>
              <input type="checkbox" checked={paused} onChange={event => setPaused(event.target.checked)} /> Create it
              paused
            </span>
          </label>
        </div>
      )}
      {general !== undefined && (
        <div className="agiflow-schedule-wide">
          <ErrorNotice message={general} />
        </div>
      )}
      <span className="agiflow-manage-actions agiflow-schedule-wide">
        <Button type="submit" className="jp-mod-accept" data-testid="agiflow-schedule-save" disabled={busy}>
          {busy ? 'Saving…' : editing ? 'Save' : 'Create schedule'}
        </Button>
        <Button type="button" minimal onClick={() => onDone(false)}>
          Cancel
        </Button>
      </span>
    </form>
  );
}
