import { LabIcon } from '@jupyterlab/ui-components';

/** Three nodes joined into a flow; `jp-icon3` follows the theme. */
const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <circle cx="5" cy="5" r="3"/>
    <circle cx="19" cy="12" r="3"/>
    <circle cx="5" cy="19" r="3"/>
  </g>
  <g class="jp-icon3" stroke="#616161" stroke-width="2" fill="none" stroke-linecap="round">
    <path d="M7.6 6.3 16.4 10.7"/>
    <path d="M7.6 17.7 16.4 13.3"/>
  </g>
</svg>`;

export const agiflowIcon = new LabIcon({ name: 'agiflow-lab:icon', svgstr });
