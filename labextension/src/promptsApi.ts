/** The prompt registry's writes and the playground's calls, over `AgiflowApi`'s one request path. */
import type { AgiflowApi } from './api';
import type { components } from './schema';
import type { Page, PromptSummary, PromptVersion } from './types';

type Schemas = components['schemas'];
export type PromptCreate = Schemas['PromptCreate'];
export type VersionCreate = Schemas['VersionCreate'];
export type PromptDiff = Schemas['PromptDiff'];
export type LabelMove = Schemas['LabelMove'];
export type Rendered = Schemas['Rendered'];
export type Connection = Schemas['Connection'];
export type ConnectionTestResult = Schemas['ConnectionTestResult'];

/** Every version's labels are in its own record: these are the ones an application follows. */
export const FOLLOWED_LABELS = ['production', 'latest'];

export class PromptsApi {
  constructor(private readonly api: AgiflowApi) {}

  private base(project: string, ...rest: string[]): string[] {
    return ['projects', project, 'prompts', ...rest];
  }

  versions(project: string, name: string, cursor: string | null, limit = 50): Promise<Page<'PromptVersion'>> {
    return this.api.read(this.base(project, name, 'versions'), { cursor, limit });
  }

  create(project: string, body: PromptCreate): Promise<PromptVersion> {
    return this.api.call('POST', this.base(project), body);
  }

  addVersion(project: string, name: string, body: VersionCreate): Promise<PromptVersion> {
    return this.api.call('POST', this.base(project, name, 'versions'), body);
  }

  moveLabel(project: string, name: string, label: string, version: number): Promise<PromptVersion> {
    return this.api.call('PUT', this.base(project, name, 'labels', label), { version });
  }

  labelHistory(project: string, name: string, label: string): Promise<{ items: LabelMove[] }> {
    return this.api.read(this.base(project, name, 'labels', label, 'history'));
  }

  rollback(project: string, name: string, label: string): Promise<PromptVersion> {
    return this.api.call('POST', this.base(project, name, 'labels', label, 'rollback'));
  }

  diff(project: string, name: string, from: number, to: number): Promise<PromptDiff> {
    return this.api.read(this.base(project, name, 'diff'), { from, to });
  }

  archive(project: string, name: string): Promise<PromptSummary> {
    return this.api.call('POST', this.base(project, name, 'archive'));
  }

  render(project: string, name: string, version: number, variables: Record<string, string>): Promise<Rendered> {
    return this.api.call('POST', this.base(project, name, 'render'), { version, variables });
  }

  connections(project: string): Promise<{ items: Connection[] }> {
    return this.api.read(['projects', project, 'models']);
  }

  tryOn(project: string, connection: string, prompt: string, model: string | null): Promise<ConnectionTestResult> {
    return this.api.call('POST', ['projects', project, 'models', connection, 'test'], { prompt, model });
  }
}

/** The SDK call that fetches exactly `version`: by a label it carries (production first), else by number. */
export function snippetFor(name: string, version: PromptVersion): string {
  const label = FOLLOWED_LABELS.find(l => version.labels.includes(l)) ?? version.labels[0];
  const ref = label !== undefined ? `label=${JSON.stringify(label)}` : `version=${version.version}`;
  return `client.prompts.get(${JSON.stringify(name)}, ${ref})`;
}
