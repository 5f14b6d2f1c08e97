/**
 * Small time-series charts drawn as SVG by React: no chart library. Colours
 * are JupyterLab theme variables (set in CSS per series class), so the charts
 * follow the light and dark themes; each time column carries a `<title>`
 * tooltip with every series' value.
 */
import * as React from 'react';

export interface Series {
  name: string;
  /** one value per time of the chart; null: nothing measured then */
  values: Array<number | null>;
}

export interface TimeChartProps {
  title: string;
  /** what the y axis counts, e.g. "spans", "ms" */
  unit: string;
  testId: string;
  /** the start of every bucket in the range (ms since 1970), ascending */
  times: number[];
  bucketMs: number;
  series: Series[];
  /** bars stack the series; lines draw each, with gaps where a value is null */
  kind: 'bar' | 'line';
  format: (value: number) => string;
  /** the y axis reaches at least this (e.g. 1 for a rate) */
  minMax?: number;
  note?: React.ReactNode;
}

const W = 480;
const H = 176;
const LEFT = 52;
const RIGHT = 10;
const TOP = 20;
const BOTTOM = 24;
const PLOT_W = W - LEFT - RIGHT;
const PLOT_H = H - TOP - BOTTOM;
const Y_TICKS = 4;
const X_TICKS = 3;
export const MAX_SERIES = 6;

export function TimeChart(props: TimeChartProps): JSX.Element {
  const { title, unit, testId, times, bucketMs, series, kind, format, minMax = 0, note } = props;
  const n = times.length;
  const totals = times.map((_, i) =>
    kind === 'bar'
      ? series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0)
      : Math.max(0, ...series.map(s => s.values[i] ?? 0))
  );
  const hasData = series.some(s => s.values.some(v => v !== null && v !== 0));
  const top = niceCeil(Math.max(minMax, ...totals));
  const colW = PLOT_W / Math.max(n, 1);
  const x = (i: number): number => LEFT + (i + 0.5) * colW;
  const y = (v: number): number => TOP + PLOT_H - (v / top) * PLOT_H;
  const ticks = Array.from({ length: Y_TICKS + 1 }, (_, k) => (top * k) / Y_TICKS);
  const xTicks = n <= 1 ? [0] : Array.from({ length: X_TICKS + 1 }, (_, k) => Math.round(((n - 1) * k) / X_TICKS));

  return (
    <figure className="agiflow-chart" data-testid={testId} data-has-data={hasData}>
      <figcaption className="agiflow-chart-title">{title}</figcaption>
      <svg className="agiflow-chart-svg" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title} over time`}>
        {ticks.map(t => (
          <g key={t} className="agiflow-chart-grid">
            <line x1={LEFT} x2={W - RIGHT} y1={y(t)} y2={y(t)} />
            <text x={LEFT - 4} y={y(t) + 3} textAnchor="end" className="agiflow-chart-label">
              {format(t)}
            </text>
          </g>
        ))}
        <text className="agiflow-chart-label agiflow-chart-unit" x={4} y={TOP - 9}>
          {unit}
        </text>
        {xTicks.map(i => (
          <text
            key={i}
            x={x(i)}
            y={H - 8}
            textAnchor={i === 0 && n > 1 ? 'start' : i === n - 1 && n > 1 ? 'end' : 'middle'}
            className="agiflow-chart-label"
          >
            {n > 0 ? timeLabel(times[i], bucketMs, (n - 1) * bucketMs) : ''}
          </text>
        ))}
        <line className="agiflow-chart-axis" x1={LEFT} x2={W - RIGHT} y1={TOP + PLOT_H} y2={TOP + PLOT_H} />
        {kind === 'bar' ? <Bars {...{ series, times, colW, x, y }} /> : <Lines {...{ series, x, y }} />}
        {times.map((t, i) => (
          <rect key={t} className="agiflow-chart-hit" x={LEFT + i * colW} y={TOP} width={colW} height={PLOT_H}>
            <title>
              {[
                timeTitle(t, bucketMs),
                ...series.map(s => `${s.name}: ${s.values[i] === null ? '—' : format(s.values[i] ?? 0)}`)
              ].join('\n')}
            </title>
          </rect>
        ))}
        {!hasData && (
          <text x={LEFT + PLOT_W / 2} y={TOP + PLOT_H / 2} textAnchor="middle" className="agiflow-chart-empty">
            no data in this range
          </text>
        )}
      </svg>
      {series.length > 1 && (
        <ul className="agiflow-chart-legend">
          {series.map((s, k) => (
            <li key={s.name} className={`agiflow-series-${k % MAX_SERIES}`}>
              <span className="agiflow-legend-swatch" aria-hidden="true" />
              {s.name}
            </li>
          ))}
        </ul>
      )}
      {note && <div className="agiflow-chart-note agiflow-muted">{note}</div>}
    </figure>
  );
}

interface Scale {
  series: Series[];
  x: (i: number) => number;
  y: (v: number) => number;
}

function Bars({ series, times, colW, x, y }: Scale & { times: number[]; colW: number }): JSX.Element {
  const barW = Math.max(1, Math.min(colW * 0.8, 24));
  return (
    <g className="agiflow-chart-bars">
      {times.map((t, i) => {
        let base = 0;
        return series.map((s, k) => {
          const v = s.values[i] ?? 0;
          if (v <= 0) {
            return null;
          }
          const rect = (
            <rect
              key={`${t}-${k}`}
              className={`agiflow-chart-bar agiflow-series-${k % MAX_SERIES}`}
              x={x(i) - barW / 2}
              y={y(base + v)}
              width={barW}
              height={Math.max(0.5, y(base) - y(base + v))}
            />
          );
          base += v;
          return rect;
        });
      })}
    </g>
  );
}

function Lines({ series, x, y }: Scale): JSX.Element {
  return (
    <g className="agiflow-chart-lines">
      {series.map((s, k) => (
        <g key={s.name} className={`agiflow-series-${k % MAX_SERIES}`}>
          <path className="agiflow-chart-line" d={linePath(s.values, x, y)} />
          {s.values.map((v, i) =>
            v === null || (s.values[i - 1] ?? null) !== null || (s.values[i + 1] ?? null) !== null ? null : (
              // a value with no neighbour draws no segment: a dot shows it
              <circle key={i} className="agiflow-chart-dot" cx={x(i)} cy={y(v)} r={2.5} />
            )
          )}
        </g>
      ))}
    </g>
  );
}

/** Segments through consecutive non-null values; a null breaks the line. */
export function linePath(values: Array<number | null>, x: (i: number) => number, y: (v: number) => number): string {
  let d = '';
  let drawing = false;
  values.forEach((v, i) => {
    if (v === null) {
      drawing = false;
      return;
    }
    d += `${drawing ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    drawing = true;
  });
  return d;
}

/** The smallest 1, 2, 2.5 or 5 × 10^k at or above `value` (1 for nothing). */
export function niceCeil(value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) {
    return 1;
  }
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value * (1 - 1e-9)) {
      return step * power;
    }
  }
  return 10 * power;
}

const DAY = 86_400_000;

function timeLabel(ms: number, bucketMs: number, rangeMs: number): string {
  const date = new Date(ms);
  if (bucketMs >= DAY) {
    return date.toLocaleDateString([], { month: 'short', day: 'numeric' });
  }
  if (rangeMs > DAY) {
    return date.toLocaleString([], { month: 'short', day: 'numeric', hour: 'numeric' });
  }
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function timeTitle(ms: number, bucketMs: number): string {
  const date = new Date(ms);
  return bucketMs >= DAY ? date.toLocaleDateString() : date.toLocaleString();
}
