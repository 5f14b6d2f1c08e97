// MetricsView's view: one small SVG chart per measure (count, error rate, p95 latency, tokens, cost) over
// the buckets the kernel read from the metrics API; the window and bucket pickers ask it to reload.

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  node.append(...children.flat().filter(c => c !== null && c !== undefined));
  return node;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

const CHARTS = [
  ['count', 'spans', v => String(Math.round(v))],
  ['error_rate', 'error rate', v => `${(v * 100).toFixed(1)}%`],
  ['latency_p95_ms', 'p95 latency', v => `${Math.round(v)} ms`],
  ['tokens', 'tokens', v => String(Math.round(v))],
  ['cost_usd', 'cost', v => `$${v.toFixed(4)}`]
];

function chart(points, key, title, fmt) {
  const W = 240;
  const H = 80;
  const pad = 4;
  const values = points.map(p => p[key]);
  const known = values.filter(v => v !== null && v !== undefined);
  const max = Math.max(...known, 0) || 1;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': title });
  svg.append(s('line', { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, class: 'agiflow-w-axis' }));
  // One bar per bucket (a single bucket is still visible); a bucket without the measure has no bar.
  const slot = (W - 2 * pad) / Math.max(points.length, 1);
  values.forEach((v, i) => {
    if (v === null || v === undefined) return;
    const height = ((H - 2 * pad) * v) / max;
    const width = Math.max(Math.min(slot * 0.8, 24), 1);
    const bar = s('rect', { x: pad + slot * i + (slot - width) / 2, y: H - pad - height, width, height, class: 'agiflow-w-bar-mark' });
    bar.append(s('title'));
    bar.firstChild.textContent = `${points[i].time}: ${fmt(v)}`;
    svg.append(bar);
  });
  const total = key === 'count' || key === 'tokens' || key === 'cost_usd' ? known.reduce((a, b) => a + b, 0) : known.length ? Math.max(...known) : null;
  const summary = total === null ? 'no data' : `${key === 'count' || key === 'tokens' || key === 'cost_usd' ? 'total' : 'max'} ${fmt(total)}`;
  return h('div', { class: 'agiflow-w-chart', 'data-measure': key }, h('div', {}, h('strong', {}, title), ' ', h('span', { class: 'agiflow-w-muted' }, summary)), svg);
}

function render({ model, el }) {
  const hours = h('select', { 'aria-label': 'window' }, [1, 6, 24, 24 * 7].map(v => h('option', { value: String(v) }, v < 24 ? `${v} h` : `${v / 24} d`)));
  const bucket = h('select', { 'aria-label': 'bucket' }, ['minute', 'hour', 'day'].map(v => h('option', { value: v }, v)));
  const reload = () => model.send({ type: 'reload', hours: Number(hours.value), bucket: bucket.value });
  hours.addEventListener('change', reload);
  bucket.addEventListener('change', reload);
  const charts = h('div', { class: 'agiflow-w-charts', 'data-testid': 'agiflow-w-charts' });
  const head = h('div', { class: 'agiflow-w-head' });
  const status = h('div', { role: 'status', class: 'agiflow-w-error' });
  el.append(h('div', { class: 'agiflow-w agiflow-w-metrics' }, h('div', { class: 'agiflow-w-row' }, head, hours, bucket), charts, status));

  function draw() {
    const points = model.get('points');
    head.replaceChildren(h('h4', {}, `Metrics · ${model.get('project')}`), h('span', { class: 'agiflow-w-muted' }, `${points.length} bucket${points.length === 1 ? '' : 's'}`));
    if (![...hours.options].some(o => o.value === String(model.get('hours')))) hours.append(h('option', { value: String(model.get('hours')) }, `${model.get('hours')} h`));
    hours.value = String(model.get('hours'));
    bucket.value = model.get('bucket');
    charts.replaceChildren(...CHARTS.map(([key, title, fmt]) => chart(points, key, title, fmt)));
  }
  model.on('change:points change:hours change:bucket', draw);
  model.on('change:error change:busy', () => {
    status.textContent = model.get('error');
    hours.disabled = bucket.disabled = Boolean(model.get('busy'));
  });
  draw();
}

export default { render };
