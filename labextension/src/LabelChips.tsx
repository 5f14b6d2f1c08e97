import * as React from 'react';

export interface LabelChipsProps {
  /** label names, optionally with the version each points at */
  labels: string[] | Record<string, number>;
}

export function LabelChips({ labels }: LabelChipsProps): JSX.Element | null {
  const entries: Array<[string, number | undefined]> = Array.isArray(labels)
    ? labels.map(label => [label, undefined])
    : Object.entries(labels);
  if (entries.length === 0) {
    return null;
  }
  return (
    <span className="agiflow-labels">
      {entries.map(([label, version]) => (
        <span
          key={label}
          className={`agiflow-chip agiflow-chip-label agiflow-chip-${label.replace(/[^a-z0-9_-]/gi, '_')}`}
          title={version === undefined ? label : `${label} → v${version}`}
        >
          {version === undefined ? label : `${label}: v${version}`}
        </span>
      ))}
    </span>
  );
}
