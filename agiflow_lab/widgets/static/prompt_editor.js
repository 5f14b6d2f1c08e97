// PromptEditor's view: the template, a form for its {{variables}}, the live render (done in the kernel with
// the SDK's renderer), "try it", save as a new version, move a label, diff two versions.
// Inputs change synced state (model.set); every API call is a typed message (model.send) run by the kernel.

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

function setOptions(select, options, chosen) {
  const keep = chosen ?? select.value;
  select.replaceChildren(...options.map(([value, text]) => h('option', { value }, text)));
  if (options.some(([value]) => value === keep)) select.value = keep;
}

function fmtCost(cost) {
  if (cost === null || cost === undefined) return 'unpriced';
  return cost < 0.01 ? `$${cost.toFixed(6)}` : `$${cost.toFixed(4)}`;
}

function render({ model, el }) {
  const sync = (key, value) => {
    model.set(key, value);
    model.save_changes();
  };
  const send = message => model.send(message);
  const buttons = [];
  const button = (text, testid, onclick, secondary = false) => {
    const b = h('button', { 'data-testid': testid, class: secondary ? 'is-secondary' : '', onclick }, text);
    buttons.push(b);
    return b;
  };

  const title = h('h4', {}, '');
  const labelChips = h('span', { class: 'agiflow-w-head' });
  const versionSelect = h('select', { 'data-testid': 'agiflow-w-version', 'aria-label': 'version' });
  const loadButton = button('Open', 'agiflow-w-load', () => send({ type: 'load', version: Number(versionSelect.value) }), true);

  const templateArea = h('textarea', { 'data-testid': 'agiflow-w-template', 'aria-label': 'template', rows: 6 });
  templateArea.addEventListener('input', () => sync('template', templateArea.value));
  const chatBox = h('div', { class: 'agiflow-w-section' });

  const varsBox = h('div', { class: 'agiflow-w-vars', 'data-testid': 'agiflow-w-variables' });
  const varInputs = new Map();
  const preview = h('pre', { 'data-testid': 'agiflow-w-rendered' });
  const missingLine = h('div', { class: 'agiflow-w-muted' });

  const connectionSelect = h('select', { 'data-testid': 'agiflow-w-connection', 'aria-label': 'connection' });
  const modelInput = h('input', { placeholder: 'model (default: the connection’s)', 'aria-label': 'model', size: 24 });
  const tryButton = button('Try it', 'agiflow-w-try', () =>
    send({ type: 'try', connection: connectionSelect.value, model: modelInput.value.trim() })
  );
  const trialBox = h('div', { 'data-testid': 'agiflow-w-trial' });

  const commitInput = h('input', { placeholder: 'commit message', 'aria-label': 'commit message', size: 30 });
  const saveLabels = h('input', { placeholder: 'labels (comma separated)', 'aria-label': 'labels', size: 20 });
  const saveButton = button('Save as new version', 'agiflow-w-save', () =>
    send({
      type: 'save',
      commit_message: commitInput.value,
      labels: saveLabels.value.split(',').map(s => s.trim()).filter(Boolean)
    })
  );

  const labelInput = h('input', { placeholder: 'label', 'aria-label': 'label', size: 12 });
  const labelVersion = h('select', { 'aria-label': 'label version' });
  const moveButton = button('Move label', 'agiflow-w-move-label', () =>
    send({ type: 'move_label', label: labelInput.value.trim(), version: Number(labelVersion.value) })
  );

  const diffFrom = h('select', { 'aria-label': 'diff from' });
  const diffTo = h('select', { 'aria-label': 'diff to' });
  const diffButton = button(
    'Diff',
    'agiflow-w-diff',
    () => send({ type: 'diff', from_version: Number(diffFrom.value), to_version: Number(diffTo.value) }),
    true
  );
  const diffBox = h('div', { 'data-testid': 'agiflow-w-diff-result' });
  const status = h('div', { role: 'status', 'data-testid': 'agiflow-w-status' });

  el.append(
    h(
      'div',
      { class: 'agiflow-w agiflow-w-prompt' },
      h('div', { class: 'agiflow-w-head' }, title, labelChips, h('span', { class: 'agiflow-w-muted' }, 'version'), versionSelect, loadButton),
      templateArea,
      chatBox,
      h('div', { class: 'agiflow-w-section' }, h('strong', {}, 'Variables'), varsBox),
      h('div', { class: 'agiflow-w-section' }, h('strong', {}, 'Rendered'), preview, missingLine),
      h('div', { class: 'agiflow-w-section' }, h('div', { class: 'agiflow-w-row' }, connectionSelect, modelInput, tryButton), trialBox),
      h('div', { class: 'agiflow-w-section' }, h('div', { class: 'agiflow-w-row' }, commitInput, saveLabels, saveButton)),
      h(
        'div',
        { class: 'agiflow-w-section' },
        h('div', { class: 'agiflow-w-row' }, labelInput, h('span', {}, '→'), labelVersion, moveButton),
        h('div', { class: 'agiflow-w-row' }, h('span', {}, 'diff'), diffFrom, h('span', {}, '→'), diffTo, diffButton),
        diffBox
      ),
      status
    )
  );

  function drawHead() {
    const type = model.get('prompt_type');
    title.textContent = `${model.get('name')} · v${model.get('version')} (${type}, latest v${model.get('latest')})`;
    const labels = Object.entries(model.get('labels')).sort();
    labelChips.replaceChildren(...labels.map(([label, v]) => h('span', { class: 'agiflow-w-chip' }, `${label} → v${v}`)));
    const versions = model.get('versions').map(v => [String(v.version), `v${v.version}${v.labels.length ? ` (${v.labels.join(', ')})` : ''}${v.commit_message ? ` · ${v.commit_message}` : ''}`]);
    const current = String(model.get('version'));
    setOptions(versionSelect, versions, current);
    // New versions (a save): the pickers start again from the version shown and the one before it.
    const fresh = versions.length !== shownVersions;
    shownVersions = versions.length;
    setOptions(labelVersion, versions, fresh ? current : undefined);
    setOptions(diffTo, versions, fresh ? current : undefined);
    setOptions(diffFrom, versions, fresh && versions.length > 1 ? versions[1][0] : undefined);
  }
  let shownVersions = -1;

  function drawTemplate() {
    const chat = model.get('prompt_type') === 'chat';
    templateArea.hidden = chat;
    chatBox.hidden = !chat;
    if (!chat && templateArea.value !== model.get('template')) templateArea.value = model.get('template');
    if (chat) {
      const messages = model.get('chat');
      if (chatBox.children.length !== messages.length) {
        chatBox.replaceChildren(
          ...messages.map((m, i) => {
            const area = h('textarea', { 'aria-label': `${m.role} message`, rows: 3 });
            area.addEventListener('input', () => {
              const next = model.get('chat').map((x, j) => (j === i ? { ...x, content: area.value } : x));
              sync('chat', next);
            });
            return h('div', {}, h('span', { class: 'agiflow-w-chip' }, m.role), area);
          })
        );
      }
      messages.forEach((m, i) => {
        const area = chatBox.children[i].querySelector('textarea');
        if (area.value !== m.content) area.value = m.content;
      });
    }
  }

  function drawVariables() {
    const names = model.get('variables');
    const values = model.get('values');
    for (const [name, row] of varInputs) {
      if (!names.includes(name)) {
        row.label.remove();
        row.input.remove();
        varInputs.delete(name);
      }
    }
    for (const name of names) {
      let row = varInputs.get(name);
      if (!row) {
        const input = h('input', { 'data-testid': `agiflow-w-var-${name}`, 'aria-label': name, size: 40 });
        input.addEventListener('input', () => sync('values', { ...model.get('values'), [name]: input.value }));
        row = { label: h('label', {}, name), input };
        varInputs.set(name, row);
      }
      varsBox.append(row.label, row.input); // (re)appended in the template's order
      if (document.activeElement !== row.input && row.input.value !== (values[name] ?? '')) row.input.value = values[name] ?? '';
    }
    if (!names.length) varsBox.replaceChildren(h('span', { class: 'agiflow-w-muted' }, 'no {{variables}}'));
    else varsBox.querySelectorAll(':scope > span.agiflow-w-muted').forEach(n => n.remove());
  }

  function drawRender() {
    preview.textContent = model.get('rendered');
    const missing = model.get('missing');
    missingLine.textContent = missing.length ? `no value yet: ${missing.join(', ')}` : '';
  }

  function drawConnections() {
    setOptions(
      connectionSelect,
      model.get('connections').map(c => [c.name, c.builtin ? `${c.name} (built-in echo)` : `${c.name} (${c.kind}${c.default_model ? `, ${c.default_model}` : ''})`])
    );
  }

  function drawTrial() {
    const trial = model.get('trial');
    if (!trial) return trialBox.replaceChildren();
    const facts = [
      `${trial.connection} · ${trial.model}`,
      `${trial.latency_ms.toFixed(0)} ms`,
      `tokens ${trial.tokens_in ?? '–'} in / ${trial.tokens_out ?? '–'} out`,
      fmtCost(trial.cost_usd)
    ];
    trialBox.replaceChildren(
      h('div', { class: 'agiflow-w-muted', 'data-testid': 'agiflow-w-trial-facts' }, facts.join(' · ')),
      trial.ok ? h('pre', { 'data-testid': 'agiflow-w-trial-output' }, trial.output ?? '') : h('div', { class: 'agiflow-w-error' }, trial.error ?? 'failed')
    );
  }

  function drawDiff() {
    const diff = model.get('diff');
    if (!diff) return diffBox.replaceChildren();
    const lines = diff.template_diff.map(line => {
      const cls = line.startsWith('+') && !line.startsWith('+++') ? 'agiflow-w-added' : line.startsWith('-') && !line.startsWith('---') ? 'agiflow-w-removed' : '';
      return h('div', { class: cls }, line);
    });
    const changes = diff.config_changes.map(c => h('div', {}, `${c.key}: ${JSON.stringify(c.before)} → ${JSON.stringify(c.after)}`));
    diffBox.replaceChildren(
      h('div', { class: 'agiflow-w-muted' }, `v${diff.from_version} → v${diff.to_version}`),
      h('pre', {}, lines.length ? lines : 'templates are identical'),
      ...changes
    );
  }

  function drawStatus() {
    const busy = model.get('busy');
    for (const b of buttons) b.disabled = Boolean(busy);
    const error = model.get('error');
    const notice = model.get('notice');
    status.className = error ? 'agiflow-w-error' : notice ? 'agiflow-w-notice' : 'agiflow-w-muted';
    status.textContent = error || notice || (busy ? `${busy}…` : '');
  }

  const draws = {
    'change:name change:version change:latest change:labels change:versions change:prompt_type': drawHead,
    'change:template change:chat change:prompt_type': drawTemplate,
    'change:variables change:values': drawVariables,
    'change:rendered change:missing': drawRender,
    'change:connections': drawConnections,
    'change:trial': drawTrial,
    'change:diff': drawDiff,
    'change:busy change:error change:notice': drawStatus
  };
  for (const [events, draw] of Object.entries(draws)) {
    model.on(events, draw);
    draw();
  }
  return () => {
    for (const [events, draw] of Object.entries(draws)) model.off(events, draw);
  };
}

export default { render };
