/** The model connection and price routes the Models view uses, typed from `schema.d.ts`. */
import type { AgiflowApi } from './api';
import type { components } from './schema';

type Schemas = components['schemas'];

export type Connection = Schemas['Connection'];
export type ConnectionKind = Schemas['ConnectionCreate']['kind'];
export type ConnectionCreate = Schemas['ConnectionCreate'];
export type ConnectionUpdate = Schemas['ConnectionUpdate'];
export type ConnectionOptions = Schemas['ConnectionOptions'];
export type ConnectionTest = Schemas['ConnectionTest'];
export type ConnectionTestResult = Schemas['ConnectionTestResult'];
export type PriceTable = Schemas['PriceTable'];
export type PriceRow = Schemas['PriceRow'];
export type PriceSet = Schemas['PriceSet'];

export const CONNECTION_KINDS: ConnectionKind[] = ['openai', 'azure_openai', 'anthropic'];

export class ModelsApi {
  constructor(private readonly api: AgiflowApi) {}

  list(project: string): Promise<Schemas['ConnectionList']> {
    return this.api.read(['projects', project, 'models']);
  }

  create(project: string, body: ConnectionCreate): Promise<Connection> {
    return this.api.call('POST', ['projects', project, 'models'], body);
  }

  update(project: string, name: string, body: ConnectionUpdate): Promise<Connection> {
    return this.api.call('PATCH', ['projects', project, 'models', name], body);
  }

  remove(project: string, name: string): Promise<void> {
    return this.api.call('DELETE', ['projects', project, 'models', name]);
  }

  test(project: string, name: string, body: ConnectionTest): Promise<ConnectionTestResult> {
    return this.api.call('POST', ['projects', project, 'models', name, 'test'], body);
  }

  prices(project: string): Promise<PriceTable> {
    return this.api.read(['projects', project, 'prices']);
  }

  setPrice(project: string, model: string, body: PriceSet): Promise<PriceRow> {
    return this.api.call('PUT', ['projects', project, 'prices', model], body);
  }

  deletePrice(project: string, model: string): Promise<void> {
    return this.api.call('DELETE', ['projects', project, 'prices', model]);
  }
}
