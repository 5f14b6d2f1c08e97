/** The schedule routes the Schedules view uses, typed from `schema.d.ts`. */
import type { AgiflowApi } from './api';
import type { components } from './schema';
import type { Page } from './types';

type Schemas = components['schemas'];

export type Schedule = Schemas['Schedule'];
export type ScheduleCreate = Schemas['ScheduleCreate'];
export type ScheduleUpdate = Schemas['ScheduleUpdate'];
export type Firing = Schemas['Firing'];
export type FiringOutcome = Firing['outcome'];
export type ScheduleTarget = Schedule['target'];
export type MissedPolicy = Schedule['missed'];
export type OverlapPolicy = Schedule['overlap'];
export type JobSubmit = Schemas['JobSubmit'];
export type RunSubmit = Schemas['RunSubmit'];

export const MISSED_POLICIES: { value: MissedPolicy; label: string }[] = [
  { value: 'skip', label: 'skip them' },
  { value: 'run_once', label: 'run once (the latest)' },
  { value: 'catch_up', label: 'catch up (the latest N)' }
];

export const OVERLAP_POLICIES: { value: OverlapPolicy; label: string }[] = [
  { value: 'allow', label: 'allow another' },
  { value: 'skip', label: 'skip the tick (recorded)' },
  { value: 'queue', label: 'queue one' }
];

export class SchedulesApi {
  constructor(private readonly api: AgiflowApi) {}

  list(project: string, cursor: string | null, limit = 50): Promise<Page<'Schedule'>> {
    return this.api.read(['projects', project, 'schedules'], { cursor, limit });
  }

  create(project: string, body: ScheduleCreate): Promise<Schedule> {
    return this.api.call('POST', ['projects', project, 'schedules'], body);
  }

  update(project: string, name: string, body: ScheduleUpdate): Promise<Schedule> {
    return this.api.call('PATCH', ['projects', project, 'schedules', name], body);
  }

  remove(project: string, name: string): Promise<void> {
    return this.api.call('DELETE', ['projects', project, 'schedules', name]);
  }

  pause(project: string, name: string): Promise<Schedule> {
    return this.api.call('POST', ['projects', project, 'schedules', name, 'pause']);
  }

  resume(project: string, name: string): Promise<Schedule> {
    return this.api.call('POST', ['projects', project, 'schedules', name, 'resume']);
  }

  /** Fire the target now, whatever the overlap policy: the firing it made. */
  runNow(project: string, name: string): Promise<Firing> {
    return this.api.call('POST', ['projects', project, 'schedules', name, 'run']);
  }

  firings(project: string, name: string, cursor: string | null, limit = 20): Promise<Page<'Firing'>> {
    return this.api.read(['projects', project, 'schedules', name, 'firings'], { cursor, limit });
  }
}
