// TraceView's view: the span tree (depth first, start order); the selected span's input, output,
// attributes and events beside it. Selecting a span is a message the kernel answers with its detail.

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

function render({ model, el }) {
  const tree = h('ul', { class: 'agiflow-w-tree', 'data-testid': 'agiflow-w-span-tree', role: 'tree' });
  const detail = h('div', { 'data-testid': 'agiflow-w-span-detail' });
  const head = h('div', { class: 'agiflow-w-head' });
  const scores = h('div', { class: 'agiflow-w-muted' });
  const status = h('div', { role: 'status', class: 'agiflow-w-error' });
  el.append(h('div', { class: 'agiflow-w agiflow-w-trace' }, head, scores, h('div', { class: 'agiflow-w-split' }, tree, detail), status));

  function drawTree() {
    const spans = model.get('spans');
    const selected = model.get('selected');
    const root = spans[0];
    head.replaceChildren(
      h('h4', {}, root ? root.name : 'trace'),
      h('span', { class: 'agiflow-w-muted' }, `${model.get('trace_id')} · ${spans.length} spans`)
    );
    tree.replaceChildren(
      ...spans.map(s => {
        const facts = [s.span_type !== 'other' ? s.span_type : '', s.model ?? '', `${s.duration_ms.toFixed(1)} ms`].filter(Boolean).join(' · ');
        const item = h(
          'li',
          {
            role: 'treeitem',
            tabindex: '0',
            'data-span-id': s.span_id,
            class: s.span_id === selected ? 'is-selected' : '',
            style: `padding-left: ${4 + 14 * s.depth}px`,
            onclick: () => model.send({ type: 'select', span_id: s.span_id }),
            onkeydown: e => e.key === 'Enter' && model.send({ type: 'select', span_id: s.span_id })
          },
          s.name,
          ' ',
          h('span', { class: 'agiflow-w-muted' }, facts),
          s.status === 'error' ? h('span', { class: 'agiflow-w-chip is-bad', title: s.status_message ?? '' }, 'error') : null
        );
        return item;
      })
    );
    scores.textContent = model
      .get('scores')
      .map(s => `${s.name} = ${s.value}${s.span_id ? ' (span)' : ''}`)
      .join(' · ');
  }

  function drawDetail() {
    const d = model.get('detail');
    if (!d) return detail.replaceChildren();
    detail.replaceChildren(
      h('strong', {}, d.name),
      h('div', { class: 'agiflow-w-muted' }, 'input'),
      h('pre', { 'data-testid': 'agiflow-w-span-input' }, d.input ?? '–'),
      h('div', { class: 'agiflow-w-muted' }, 'output'),
      h('pre', { 'data-testid': 'agiflow-w-span-output' }, d.output ?? '–'),
      h('details', {}, h('summary', {}, 'attributes'), h('pre', {}, d.attributes)),
      h('details', {}, h('summary', {}, 'events'), h('pre', {}, d.events))
    );
  }

  const draws = {
    'change:spans change:selected change:scores': drawTree,
    'change:detail': drawDetail,
    'change:error': () => (status.textContent = model.get('error'))
  };
  for (const [events, draw] of Object.entries(draws)) {
    model.on(events, draw);
    draw();
  }
}

export default { render };
