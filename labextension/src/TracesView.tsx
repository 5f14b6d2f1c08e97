import * as React from 'react';

import type { AgiflowApi } from './api';
import { ErrorNotice } from './ErrorNotice';
import { GroupList, TraceList } from './TraceList';
import { TraceView } from './TraceView';
import { RangeKey, TIME_RANGES, rangeBounds } from './timeRanges';
import type { GroupSummary, Page, TraceStatus, TraceSummary } from './types';
import { usePages } from './usePages';
import { useSpanActivity } from './useSpanActivity';
import { LiveToggle } from './LiveToolbar';
import { useProjectChoice } from './useProjectChoice';
import { Choice, FilterSelect } from './FilterSelect';
import { ManageFrame } from './ManageFrame';

/** A trace to show, asked for from outside the view (the dashboard's recent errors). */
export interface TraceRequest {
  project: string;
  traceId: string;
  /** grows with every request, so asking for the same trace twice opens it twice */
  seq: number;
}

export interface TracesViewProps {
  api: AgiflowApi;
  request?: TraceRequest;
}

type Tab = 'traces' | 'sessions' | 'users';

interface Filters {
  range: RangeKey | 'all';
  status: TraceStatus | '';
  model: string;
  name: string;
  user: string;
  session: string;
  text: string;
}

const NO_FILTERS: Filters = { range: '24h', status: '', model: '', name: '', user: '', session: '', text: '' };
const TEXT_FILTERS = ['model', 'name', 'user', 'session', 'text'] as const;
const TEXT_LABELS: Record<(typeof TEXT_FILTERS)[number], string> = {
  model: 'Model',
  name: 'Name',
  user: 'User',
  session: 'Session',
  text: 'Search'
};
const STATUS_CHOICES: readonly Choice<TraceStatus | ''>[] = [
  { value: '', label: 'any' },
  { value: 'ok', label: 'ok' },
  { value: 'error', label: 'error' }
];
const PAGE_SIZE = 50;
const TYPING_MS = 350;

/**
 * The project's traces: filters, the list a page at a time (newest first), the
 * sessions and users seen, and one trace's spans when a row is opened.
 */
export function TracesView({ api, request }: TracesViewProps): JSX.Element {
  const choice = useProjectChoice(api);
  const { project, setProject } = choice;
  const [tab, setTab] = React.useState<Tab>('traces');
  const [draft, setDraft] = React.useState<Filters>(NO_FILTERS);
  // Typing settles before it asks the server; a select applies at once.
  const typed = useDebounced(draft, TYPING_MS);
  const filters: Filters = { ...typed, range: draft.range, status: draft.status };
  const [refresh, setRefresh] = React.useState(0);
  const [follow, setFollow] = React.useState(true);
  // New spans in the project refetch the first page (the server says when; no polling).
  const live = useSpanActivity(api, project, follow, () => setRefresh(r => r + 1));
  const [opened, setOpened] = React.useState<{ traceId: string; summary?: TraceSummary } | null>(null);

  React.useEffect(() => {
    if (request) {
      setProject(request.project);
      setTab('traces');
      setOpened({ traceId: request.traceId });
    }
    // A new request is a new object (its `seq` grows); `setProject` is a state setter, stable.
  }, [request, setProject]);

  const filterKey = JSON.stringify(filters);
  const traces = usePages<Page<'TraceSummary'>, TraceSummary>(
    project === null
      ? null
      : cursor =>
          api.listTraces(project, {
            start: filters.range === 'all' ? undefined : rangeBounds(filters.range).start,
            status: filters.status || undefined,
            model: filters.model.trim() || undefined,
            name: filters.name.trim() || undefined,
            user: filters.user.trim() || undefined,
            session: filters.session.trim() || undefined,
            text: filters.text.trim() || undefined,
            limit: PAGE_SIZE,
            cursor
          }),
    [api, project, filterKey],
    refresh
  );
  const groupBy = tab === 'sessions' || tab === 'users' ? tab : null;
  const groups = usePages<Page<'GroupSummary'>, GroupSummary>(
    project === null || groupBy === null
      ? null
      : cursor =>
          api.listTraceGroups(project, groupBy, {
            ...(filters.range === 'all' ? { start: new Date(0).toISOString() } : rangeBounds(filters.range)),
            limit: PAGE_SIZE,
            cursor
          }),
    [api, project, groupBy, filters.range],
    refresh
  );

  const set = (patch: Partial<Filters>): void => setDraft(d => ({ ...d, ...patch }));
  const showGroup = (kind: 'session' | 'user', id: string): void => {
    setDraft(d => ({ ...d, [kind]: id }));
    setTab('traces');
  };

  return (
    <ManageFrame
      api={api}
      title="AGIFlow Traces"
      className="agiflow-traces"
      testId="agiflow-traces"
      ownLayout
      choice={{
        ...choice,
        setProject: slug => {
          setOpened(null);
          setProject(slug);
        }
      }}
      toolbar={
        <LiveToggle status={live} on={follow} onChange={setFollow} what="New traces appear as they are stored" />
      }
      onReload={() => setRefresh(r => r + 1)}
      filtersClassName="agiflow-trace-filters"
      filtersTestId="agiflow-trace-filters"
      filters={
        <>
          <FilterSelect
            label="Time"
            testId="agiflow-trace-range"
            value={draft.range}
            choices={[
              ...TIME_RANGES.map(r => ({ value: r.key, label: r.label })),
              { value: 'all' as const, label: 'Any time' }
            ]}
            onChange={range => set({ range })}
          />
          <div className="agiflow-tabs" role="tablist">
            {(['traces', 'sessions', 'users'] as const).map(t => (
              <button
                key={t}
                type="button"
                role="tab"
                aria-selected={tab === t}
                className={'agiflow-tab' + (tab === t ? ' agiflow-mod-selected' : '')}
                data-testid={`agiflow-tab-${t}`}
                onClick={() => setTab(t)}
              >
                {t[0].toUpperCase() + t.slice(1)}
              </button>
            ))}
          </div>
        </>
      }
    >
      {({ project }) => (
        <>
          {tab === 'traces' && (
            <div className="agiflow-filters agiflow-trace-filters">
              <FilterSelect
                label="Status"
                testId="agiflow-trace-status"
                value={draft.status}
                choices={STATUS_CHOICES}
                onChange={status => set({ status })}
              />
              {TEXT_FILTERS.map(key => (
                <label key={key} className="agiflow-field agiflow-field-text">
                  <span>{TEXT_LABELS[key]}</span>
                  <input
                    type="search"
                    className="agiflow-search-input"
                    data-testid={`agiflow-trace-filter-${key}`}
                    placeholder={key === 'text' ? 'in input/output' : key === 'name' ? 'root span name' : ''}
                    value={draft[key]}
                    onChange={event => set({ [key]: event.target.value })}
                  />
                </label>
              ))}
              <button
                type="button"
                className="agiflow-link-button"
                data-testid="agiflow-trace-filters-clear"
                onClick={() => setDraft(d => ({ ...NO_FILTERS, range: d.range }))}
              >
                Clear
              </button>
            </div>
          )}
          <div className={'agiflow-traces-body' + (opened && tab === 'traces' ? ' agiflow-mod-open' : '')}>
            <div className="agiflow-trace-list-pane">
              {tab === 'traces' ? (
                <Listing
                  pages={traces}
                  what="traces"
                  onRetry={() => setRefresh(r => r + 1)}
                  empty={
                    <>
                      No traces match. Send spans with OpenTelemetry to <code>/agiflow/api/v1/otel/v1/traces</code>, or
                      widen the filters.
                    </>
                  }
                >
                  <TraceList
                    traces={traces.items}
                    selected={opened?.traceId ?? null}
                    onOpen={trace => setOpened({ traceId: trace.trace_id, summary: trace })}
                  />
                </Listing>
              ) : (
                <Listing
                  pages={groups}
                  what={tab}
                  empty={`No ${tab} in this time range.`}
                  onRetry={() => setRefresh(r => r + 1)}
                >
                  <GroupList
                    kind={tab === 'sessions' ? 'session' : 'user'}
                    groups={groups.items}
                    onOpen={id => showGroup(tab === 'sessions' ? 'session' : 'user', id)}
                  />
                </Listing>
              )}
            </div>
            {opened && tab === 'traces' && (
              <div className="agiflow-trace-detail-pane">
                <TraceView
                  api={api}
                  project={project}
                  traceId={opened.traceId}
                  summary={opened.summary ?? traces.items.find(t => t.trace_id === opened.traceId)}
                  refresh={refresh}
                  onClose={() => setOpened(null)}
                />
              </div>
            )}
          </div>
        </>
      )}
    </ManageFrame>
  );
}

interface ListingProps {
  pages: { first: unknown; items: unknown[]; error?: string; loading: boolean; hasMore: boolean; loadMore: () => void };
  what: string;
  empty: React.ReactNode;
  onRetry: () => void;
  children: React.ReactNode;
}

/** A paged list's states around it: loading, error, empty, and "load more". */
function Listing({ pages, what, empty, onRetry, children }: ListingProps): JSX.Element {
  return (
    <>
      {pages.error !== undefined && (
        <ErrorNotice message={pages.error} onRetry={pages.first === undefined ? onRetry : pages.loadMore} />
      )}
      {pages.first === undefined ? (
        pages.error === undefined && <div className="agiflow-status">Loading {what}…</div>
      ) : pages.items.length === 0 ? (
        <div className="agiflow-status" data-testid="agiflow-list-empty">
          {empty}
        </div>
      ) : (
        children
      )}
      {pages.hasMore && (
        <button
          type="button"
          className="agiflow-link-button agiflow-more"
          data-testid="agiflow-list-more"
          disabled={pages.loading}
          onClick={pages.loadMore}
        >
          {pages.loading ? 'Loading…' : `Load more ${what}`}
        </button>
      )}
    </>
  );
}

/** `value`, once it has not changed for `ms` (a select's change is as late as a keystroke's). */
function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = React.useState(value);
  React.useEffect(() => {
    const timer = window.setTimeout(() => setSettled(value), ms);
    return () => window.clearTimeout(timer);
  }, [value, ms]);
  return settled;
}
