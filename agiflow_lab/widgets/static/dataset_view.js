// DatasetView's view: a version's items a page at a time, with a filter the kernel applies.

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
  const send = message => model.send(message);
  const version = h('select', { 'aria-label': 'version', onchange: () => send({ type: 'version', version: Number(version.value) }) });
  const filter = h('input', { placeholder: 'filter', 'aria-label': 'filter', size: 24, 'data-testid': 'agiflow-w-filter' });
  let timer;
  filter.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => send({ type: 'filter', text: filter.value }), 300);
  });
  const prev = h('button', { class: 'is-secondary', onclick: () => send({ type: 'page', page: model.get('page') - 1 }) }, '‹ Previous');
  const next = h('button', { class: 'is-secondary', onclick: () => send({ type: 'page', page: model.get('page') + 1 }) }, 'Next ›');
  const head = h('div', { class: 'agiflow-w-head' });
  const body = h('div', { 'data-testid': 'agiflow-w-dataset-items' });
  const status = h('div', { role: 'status', class: 'agiflow-w-error' });
  el.append(h('div', { class: 'agiflow-w agiflow-w-dataset' }, h('div', { class: 'agiflow-w-row' }, head, version, filter, prev, next), body, status));

  function draw() {
    head.replaceChildren(h('h4', {}, model.get('name')), h('span', { class: 'agiflow-w-muted' }, `v${model.get('version')} · ${model.get('item_count')} items · page ${model.get('page') + 1}`));
    version.replaceChildren(...model.get('versions').map(v => h('option', { value: String(v) }, `v${v}`)));
    version.value = String(model.get('version'));
    if (document.activeElement !== filter) filter.value = model.get('filter');
    const busy = Boolean(model.get('busy'));
    prev.disabled = busy || model.get('page') === 0;
    next.disabled = busy || !model.get('has_more');
    const items = model.get('items');
    body.replaceChildren(
      items.length
        ? h(
            'table',
            {},
            h('thead', {}, h('tr', {}, ['id', 'input', 'expected', 'metadata'].map(t => h('th', {}, t)))),
            h('tbody', {}, items.map(i => h('tr', {}, [i.id, i.input, i.expected, i.metadata].map(v => h('td', {}, h('div', { class: 'agiflow-w-cell' }, v))))))
          )
        : h('span', { class: 'agiflow-w-muted' }, model.get('filter') ? 'no item matches' : 'no items')
    );
    status.textContent = model.get('error');
  }
  model.on('change', draw);
  draw();
}

export default { render };
