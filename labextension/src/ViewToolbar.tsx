import * as React from 'react';
import { createPortal } from 'react-dom';

/**
 * The node of the JupyterLab toolbar above a main-area view (`registerView` adds it), or null where
 * there is none (the prompts sidebar, a view rendered on its own).
 */
export const ToolbarHost = React.createContext<HTMLElement | null>(null);

export interface ViewToolbarProps {
  /** Shown only where there is no JupyterLab toolbar: a main-area view's tab already names it. */
  title: string;
  children: React.ReactNode;
}

/**
 * A view's live state, toggles and actions, in JupyterLab's own toolbar above the view (rendered there
 * through a portal, so they stay part of the view's React tree and state); in a row of the view's
 * own where there is no such toolbar.
 */
export function ViewToolbar(props: ViewToolbarProps): JSX.Element {
  const host = React.useContext(ToolbarHost);
  if (host !== null) {
    return createPortal(props.children, host);
  }
  return (
    <div className="agiflow-toolbar">
      <span className="agiflow-title">{props.title}</span>
      <span className="agiflow-toolbar-end">{props.children}</span>
    </div>
  );
}
