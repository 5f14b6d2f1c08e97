import { LabIcon } from '@jupyterlab/ui-components';

/** Each view its own glyph (launcher cards, tabs, the sidebar); `jp-icon3` follows the theme. */
function icon(name: string, body: string): LabIcon {
  const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="none" stroke="#616161" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${body}</g>
</svg>`;
  return new LabIcon({ name: `agiflow-lab:${name}`, svgstr });
}

/** Three nodes joined into a flow: the platform itself (the sidebar). */
export const agiflowIcon = new LabIcon({
  name: 'agiflow-lab:icon',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <circle cx="5" cy="5" r="3"/>
    <circle cx="19" cy="12" r="3"/>
    <circle cx="5" cy="19" r="3"/>
  </g>
  <g class="jp-icon3" stroke="#616161" stroke-width="2" fill="none" stroke-linecap="round">
    <path d="M7.6 6.3 16.4 10.7"/>
    <path d="M7.6 17.7 16.4 13.3"/>
  </g>
</svg>`
});

/** A speech bubble with text lines. */
export const promptsIcon = icon('prompts', '<path d="M4 5h16v11H9l-5 4z"/><path d="M8 9h8M8 12h5"/>');
/** A play button in a frame. */
export const jobsIcon = icon('jobs', '<rect x="3" y="4" width="18" height="16" rx="2"/><path d="M10 9v6l5-3z"/>');
/** A checklist. */
export const evalsIcon = icon('evals', '<path d="M4 7l2 2 3-3M4 15l2 2 3-3"/><path d="M12 8h8M12 16h8"/>');
/** A span tree. */
export const tracesIcon = icon('traces', '<path d="M4 5h8M8 12h8M12 19h8"/><path d="M6 5v7h2M10 12v7h2"/>');
/** Bars of a chart. */
export const dashboardIcon = icon('dashboard', '<path d="M4 20h16"/><path d="M7 16v-5M12 16V6M17 16v-8"/>');
/** A table. */
export const datasetsIcon = icon(
  'datasets',
  '<rect x="3" y="4" width="18" height="16" rx="2"/><path d="M3 10h18M3 15h18M10 4v16"/>'
);
/** A plug. */
export const modelsIcon = icon(
  'models',
  '<path d="M9 3v5M15 3v5"/><path d="M6 8h12v3a6 6 0 0 1-12 0z"/><path d="M12 17v4"/>'
);
/** A gear. */
export const settingsIcon = icon(
  'settings',
  '<circle cx="12" cy="12" r="3"/><path d="M12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9 7 7M17 17l2.1 2.1M4.9 19.1 7 17M17 7l2.1-2.1"/>'
);
/** A clock: what runs on a timetable. */
export const schedulesIcon = icon('schedules', '<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>');
/** A book opened at the first page. */
export const gettingStartedIcon = icon(
  'getting-started',
  '<path d="M12 6c-2-2-5-2-8-1v14c3-1 6-1 8 1 2-2 5-2 8-1V5c-3-1-6-1-8 1z"/><path d="M12 6v14"/>'
);
