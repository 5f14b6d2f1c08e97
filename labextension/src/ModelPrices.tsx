import { Notification } from '@jupyterlab/apputils';
import { Button, InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import { ErrorNotice } from './ErrorNotice';
import { confirmAction } from './manageDialogs';
import type { ModelsApi, PriceRow } from './modelsApi';
import { useAction } from './useAction';
import { useRequest } from './useRequest';

const SHOWN = 50;

/**
 * The effective price table (shipped prices overlaid with the project's own),
 * the project's overrides first. Owners set and remove overrides.
 */
export function ModelPrices(props: {
  api: ModelsApi;
  project: string;
  owner: boolean;
  generation: number;
}): JSX.Element {
  const { api, project, owner, generation } = props;
  const table = useRequest(() => api.prices(project), [api, project, generation]);
  const [filter, setFilter] = React.useState('');
  const [limit, setLimit] = React.useState(SHOWN);
  const [model, setModel] = React.useState('');
  const [input, setInput] = React.useState('');
  const [output, setOutput] = React.useState('');
  const { busy, error, act } = useAction(project);

  const rows = React.useMemo(() => {
    const needle = filter.trim().toLowerCase();
    const items = (table.data?.items ?? []).filter(r => !needle || r.model.toLowerCase().includes(needle));
    return [...items.filter(r => r.source === 'project'), ...items.filter(r => r.source !== 'project')];
  }, [table.data, filter]);

  const remove = (row: PriceRow): Promise<void> =>
    act(`delete:${row.model}`, async () => {
      if (!(await confirmAction('Remove price', `Remove the project's price for ${row.model}?`, 'Remove'))) {
        return;
      }
      await api.deletePrice(project, row.model);
      Notification.success(`Price for ${row.model} removed: the shipped price applies again`, { autoClose: 3000 });
      table.reload();
    });

  return (
    <section className="agiflow-manage-section" aria-labelledby="agiflow-models-prices-title">
      <h3 id="agiflow-models-prices-title">Prices</h3>
      <p className="agiflow-muted">
        USD per million tokens, used for the cost of spans and runs.
        {table.data && ` Shipped prices as of ${table.data.shipped_as_of}.`}
      </p>
      {owner && (
        <form
          className="agiflow-manage-form"
          data-testid="agiflow-price-set"
          onSubmit={event => {
            event.preventDefault();
            void act('set', async () => {
              const row = await api.setPrice(project, model.trim(), {
                input_per_million: Number(input),
                output_per_million: Number(output)
              });
              Notification.success(`Price for ${row.model} set`, { autoClose: 3000 });
              setModel('');
              setInput('');
              setOutput('');
              table.reload();
            });
          }}
        >
          <label className="agiflow-field">
            <span>Model</span>
            <InputGroup required placeholder="e.g. gpt-4o" value={model} onChange={e => setModel(e.target.value)} />
          </label>
          <label className="agiflow-field">
            <span>Input $/M</span>
            <InputGroup
              required
              type="number"
              min={0}
              step="any"
              value={input}
              onChange={e => setInput(e.target.value)}
            />
          </label>
          <label className="agiflow-field">
            <span>Output $/M</span>
            <InputGroup
              required
              type="number"
              min={0}
              step="any"
              value={output}
              onChange={e => setOutput(e.target.value)}
            />
          </label>
          <Button type="submit" className="jp-mod-accept" disabled={busy !== null || !model.trim()}>
            Set price
          </Button>
        </form>
      )}
      {error !== undefined && <ErrorNotice message={error} />}
      <div className="agiflow-manage-form">
        <label className="agiflow-field">
          <span>Filter</span>
          <InputGroup type="search" placeholder="model name" value={filter} onChange={e => setFilter(e.target.value)} />
        </label>
      </div>
      {table.error !== undefined ? (
        <ErrorNotice message={table.error} onRetry={table.reload} />
      ) : table.data === undefined ? (
        <div className="agiflow-status">Loading prices…</div>
      ) : rows.length === 0 ? (
        <div className="agiflow-status">No price matches.</div>
      ) : (
        <table className="agiflow-table agiflow-manage-table" data-testid="agiflow-price-list">
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col" className="agiflow-num">
                Input $/M
              </th>
              <th scope="col" className="agiflow-num">
                Output $/M
              </th>
              <th scope="col">Source</th>
              {owner && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {rows.slice(0, limit).map(row => (
              <tr key={row.model} data-testid="agiflow-price-row">
                <td>{row.model}</td>
                <td className="agiflow-num">{row.input_per_million}</td>
                <td className="agiflow-num">{row.output_per_million}</td>
                <td>
                  {row.source === 'project' ? (
                    <span className="agiflow-chip agiflow-manage-chip agiflow-manage-chip-version">project</span>
                  ) : (
                    'shipped'
                  )}
                </td>
                {owner && (
                  <td>
                    {row.source === 'project' && (
                      <Button
                        small
                        minimal
                        className="agiflow-manage-danger"
                        aria-label={`Remove the price for ${row.model}`}
                        disabled={busy !== null}
                        onClick={() => void remove(row)}
                      >
                        Remove
                      </Button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {rows.length > limit && (
        <div className="agiflow-more">
          <Button minimal onClick={() => setLimit(l => l + SHOWN)}>
            Show {Math.min(SHOWN, rows.length - limit)} more of {rows.length - limit}
          </Button>
        </div>
      )}
    </section>
  );
}
