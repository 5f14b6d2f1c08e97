import * as React from 'react';

/** How many levels start open; deeper objects and arrays start folded. */
const OPEN_DEPTH = 1;
const MAX_ENTRIES = 200;

/**
 * Any JSON value as a tree: objects and arrays fold (`<details>`), leaves are
 * typed by colour. `name` labels the root; an empty object shows as `{}`.
 */
export function JsonView({ value, name }: { value: unknown; name?: string }): JSX.Element {
  return (
    <div className="agiflow-json" data-testid="agiflow-json">
      <JsonNode value={value} name={name} depth={0} />
    </div>
  );
}

function JsonNode({ value, name, depth }: { value: unknown; name?: string; depth: number }): JSX.Element {
  const label = name !== undefined ? <span className="agiflow-json-key">{name}: </span> : null;
  if (value === null || typeof value !== 'object') {
    return (
      <div className="agiflow-json-leaf">
        {label}
        <Leaf value={value} />
      </div>
    );
  }
  const entries: Array<[string, unknown]> = Array.isArray(value)
    ? value.map((v, i) => [String(i), v])
    : Object.entries(value as Record<string, unknown>);
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) {
    return (
      <div className="agiflow-json-leaf">
        {label}
        <span className="agiflow-muted">
          {open}
          {close}
        </span>
      </div>
    );
  }
  const shown = entries.slice(0, MAX_ENTRIES);
  return (
    <details className="agiflow-json-node" open={depth < OPEN_DEPTH}>
      <summary>
        {label}
        <span className="agiflow-muted">
          {open}
          {entries.length} {Array.isArray(value) ? 'items' : 'keys'}
          {close}
        </span>
      </summary>
      <div className="agiflow-json-children">
        {shown.map(([key, child]) => (
          <JsonNode key={key} name={key} value={child} depth={depth + 1} />
        ))}
        {entries.length > shown.length && <div className="agiflow-muted">… {entries.length - shown.length} more</div>}
      </div>
    </details>
  );
}

function Leaf({ value }: { value: unknown }): JSX.Element {
  if (typeof value === 'string') {
    return <span className="agiflow-json-string">{JSON.stringify(value)}</span>;
  }
  if (typeof value === 'number') {
    return <span className="agiflow-json-number">{String(value)}</span>;
  }
  if (typeof value === 'boolean' || value === null) {
    return <span className="agiflow-json-literal">{String(value)}</span>;
  }
  // Nothing parsed from JSON text gets here (undefined, a bigint, …): its type, or a bigint's digits.
  return <span>{typeof value === 'bigint' ? value.toString() : typeof value}</span>;
}

/**
 * A span's input or output: pretty JSON folded as a tree when the text is an
 * object or array, else the text as it came.
 */
export function PayloadView({ text, testId }: { text: string | null; testId: string }): JSX.Element {
  const parsed = React.useMemo(() => parseStructured(text), [text]);
  if (text === null || text === '') {
    return (
      <div className="agiflow-muted" data-testid={testId}>
        none
      </div>
    );
  }
  return (
    <div className="agiflow-payload" data-testid={testId}>
      {parsed === undefined ? <pre className="agiflow-code">{text}</pre> : <JsonView value={parsed} />}
    </div>
  );
}

function parseStructured(text: string | null): unknown {
  if (!text || !/^\s*[[{]/.test(text)) {
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
