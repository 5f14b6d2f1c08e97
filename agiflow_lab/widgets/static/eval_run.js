// EvalRunView's view: progress while the run runs (the kernel polls the API every second), the evaluator
// table, the items with the failures first, and a comparison with another run of the same dataset.

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

const pct = v => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(1)}%`);
const num = (v, digits = 3) => (v === null || v === undefined ? '–' : Number(v).toFixed(digits));
const ms = v => (v === null || v === undefined ? '–' : `${Math.round(v)} ms`);
const cost = (v, unpriced) => (v === null || v === undefined ? (unpriced ? 'unpriced' : '–') : `$${v.toFixed(4)}`);
const verdict = passed =>
  passed === null || passed === undefined
    ? h('span', { class: 'agiflow-w-muted' }, '–')
    : h('span', { class: `agiflow-w-chip ${passed ? 'is-good' : 'is-bad'}` }, passed ? 'pass' : 'fail');

function table(headers, rows) {
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, headers.map(([text, cls]) => h('th', { class: cls ?? '' }, text)))),
    h('tbody', {}, rows)
  );
}

function render({ model, el }) {
  const send = message => model.send(message);
  const head = h('div', { class: 'agiflow-w-head' });
  const bar = h('div', { class: 'agiflow-w-bar' }, h('div', { style: 'width: 0%' }));
  const facts = h('div', { class: 'agiflow-w-muted', 'data-testid': 'agiflow-w-run-facts' });
  const evaluators = h('div', { 'data-testid': 'agiflow-w-evaluators' });
  const items = h('div', { 'data-testid': 'agiflow-w-items' });
  const otherSelect = h('select', { 'aria-label': 'run to compare' });
  const compareButton = h('button', { onclick: () => otherSelect.value && send({ type: 'compare', run_id: otherSelect.value }) }, 'Compare');
  const refreshButton = h('button', { class: 'is-secondary', onclick: () => send({ type: 'refresh' }) }, 'Refresh');
  const cancelButton = h('button', { class: 'is-secondary', onclick: () => send({ type: 'cancel' }) }, 'Cancel run');
  const comparison = h('div', { 'data-testid': 'agiflow-w-comparison' });
  const status = h('div', { role: 'status' });

  el.append(
    h(
      'div',
      { class: 'agiflow-w agiflow-w-run' },
      head,
      bar,
      facts,
      h('div', { class: 'agiflow-w-section' }, h('strong', {}, 'Evaluators'), evaluators),
      h('div', { class: 'agiflow-w-section' }, h('strong', {}, 'Items (failures first)'), items),
      h('div', { class: 'agiflow-w-section' }, h('div', { class: 'agiflow-w-row' }, h('span', {}, 'compare with'), otherSelect, compareButton, refreshButton, cancelButton), comparison),
      status
    )
  );

  function drawRun() {
    const run = model.get('run');
    if (!run) return;
    const live = model.get('live');
    const stateClass = run.state === 'succeeded' ? 'is-good' : run.state === 'failed' ? 'is-bad' : '';
    head.replaceChildren(
      h('h4', {}, run.name || run.id),
      h('span', { class: `agiflow-w-chip ${stateClass}`, 'data-testid': 'agiflow-w-run-state' }, run.state + (live ? (model.get('socket') ? ' · live' : ' · live (polling)') : '')),
      h('span', { class: 'agiflow-w-muted' }, `${run.prompt} × ${run.dataset} · ${run.model}`)
    );
    const share = run.items_total ? (100 * run.items_done) / run.items_total : 0;
    bar.firstChild.style.width = `${share.toFixed(1)}%`;
    facts.textContent = [
      `${run.items_done}/${run.items_total} items`,
      `pass rate ${pct(run.pass_rate)}`,
      `${run.errors} errors`,
      `p50 ${ms(run.latency_p50_ms)}, p95 ${ms(run.latency_p95_ms)}`,
      `tokens ${run.tokens_in} in / ${run.tokens_out} out`,
      cost(run.cost, run.unpriced_items),
      run.error ? `failed: ${run.error}` : ''
    ]
      .filter(Boolean)
      .join(' · ');
    cancelButton.hidden = ['succeeded', 'failed', 'cancelled'].includes(run.state);
  }

  function drawEvaluators() {
    const rows = model.get('evaluators').map(e =>
      h(
        'tr',
        {},
        h('td', {}, e.name),
        h('td', { class: 'agiflow-w-muted' }, e.type),
        h('td', { class: 'agiflow-w-num' }, pct(e.pass_rate)),
        h('td', { class: 'agiflow-w-num' }, num(e.mean_score)),
        h('td', { class: 'agiflow-w-num' }, String(e.threshold)),
        h('td', { class: 'agiflow-w-num' }, `${e.passed}/${e.scored}`),
        h('td', { class: 'agiflow-w-num' }, String(e.errors))
      )
    );
    evaluators.replaceChildren(
      table([['evaluator'], ['type'], ['pass rate', 'agiflow-w-num'], ['mean score', 'agiflow-w-num'], ['threshold', 'agiflow-w-num'], ['passed', 'agiflow-w-num'], ['errors', 'agiflow-w-num']], rows)
    );
  }

  function drawItems() {
    const list = model.get('items');
    const names = [...new Set(list.flatMap(i => Object.keys(i.scores)))];
    const rows = list.map(i =>
      h(
        'tr',
        {},
        h('td', {}, verdict(i.passed)),
        h('td', {}, h('div', { class: 'agiflow-w-cell' }, i.input)),
        h('td', {}, h('div', { class: 'agiflow-w-cell' }, i.expected)),
        h('td', {}, h('div', { class: `agiflow-w-cell ${i.error ? 'agiflow-w-error' : ''}` }, i.error ?? i.output ?? '')),
        names.map(n => {
          const s = i.scores[n];
          return h('td', { class: 'agiflow-w-num', title: s?.explanation ?? '' }, s ? num(s.score, 2) : '–');
        }),
        h('td', { class: 'agiflow-w-num' }, ms(i.latency_ms))
      )
    );
    items.replaceChildren(
      list.length
        ? table([[''], ['input'], ['expected'], ['output'], ...names.map(n => [n, 'agiflow-w-num']), ['latency', 'agiflow-w-num']], rows)
        : h('span', { class: 'agiflow-w-muted' }, model.get('live') ? 'items appear when the run has finished' : 'no items')
    );
  }

  function drawOthers() {
    const keep = otherSelect.value;
    otherSelect.replaceChildren(...model.get('others').map(r => h('option', { value: r.id }, `${r.name} (${r.id.slice(0, 8)}, ${r.state})`)));
    if (keep) otherSelect.value = keep;
    compareButton.disabled = !model.get('others').length;
  }

  function drawComparison() {
    const c = model.get('comparison');
    if (!c) return comparison.replaceChildren();
    const [base, last] = c.runs;
    comparison.replaceChildren(
      h(
        'div',
        { class: 'agiflow-w-muted' },
        `${base.name} (${pct(c.pass_rates[0])}) → ${last.name} (${pct(c.pass_rates[1])}): ` +
          `${c.regressed} regressed, ${c.improved} improved, ${c.unchanged} unchanged (${c.score_up} score up, ${c.score_down} score down)`
      ),
      c.items.length
        ? table(
            [['change'], ['input'], ['baseline'], ['this run'], ['Δ score', 'agiflow-w-num']],
            c.items.map(i =>
              h(
                'tr',
                {},
                h('td', {}, h('span', { class: `agiflow-w-chip ${i.change === 'regressed' ? 'is-bad' : i.change === 'improved' ? 'is-good' : ''}` }, i.change)),
                h('td', {}, h('div', { class: 'agiflow-w-cell' }, i.input)),
                h('td', {}, h('div', { class: 'agiflow-w-cell' }, i.outputs[0] ?? '–')),
                h('td', {}, h('div', { class: 'agiflow-w-cell' }, i.outputs[1] ?? '–')),
                h('td', { class: 'agiflow-w-num' }, num(i.score_delta, 2))
              )
            )
          )
        : h('span', { class: 'agiflow-w-muted' }, 'no item changed its verdict')
    );
  }

  function drawStatus() {
    const busy = model.get('busy');
    for (const b of [compareButton, refreshButton, cancelButton]) b.disabled = Boolean(busy);
    if (!busy) compareButton.disabled = !model.get('others').length;
    const error = model.get('error');
    status.className = error ? 'agiflow-w-error' : 'agiflow-w-notice';
    status.textContent = error || model.get('notice') || (busy ? `${busy}…` : '');
  }

  const draws = {
    'change:run change:live change:socket': drawRun,
    'change:evaluators': drawEvaluators,
    'change:items change:live': drawItems,
    'change:others': drawOthers,
    'change:comparison': drawComparison,
    'change:busy change:error change:notice': drawStatus
  };
  for (const [events, draw] of Object.entries(draws)) {
    model.on(events, draw);
    draw();
  }
}

export default { render };
