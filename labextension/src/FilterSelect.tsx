import { HTMLSelect } from '@jupyterlab/ui-components';
import * as React from 'react';

/** One option of a `FilterSelect`: the value the view keeps, and what the user reads. */
export interface Choice<T extends string> {
  value: T;
  label: string;
}

/**
 * A labelled choice in a view's filter row (project, state, time range, group by). JupyterLab's own
 * `HTMLSelect`, so the filters look, focus and theme like JupyterLab's selects in both themes; the
 * label keeps its natural width instead of stretching across the row.
 */
export function FilterSelect<T extends string>(props: {
  label: string;
  value: T;
  choices: readonly Choice<T>[];
  onChange: (value: T) => void;
  testId?: string;
}): JSX.Element {
  const { label, value, choices, onChange, testId } = props;
  return (
    <label className="agiflow-field agiflow-field-fixed agiflow-filter-select">
      <span>{label}</span>
      <HTMLSelect
        data-testid={testId}
        value={value}
        onChange={event => onChange(event.target.value as T)}
        options={[...choices]}
      />
    </label>
  );
}
