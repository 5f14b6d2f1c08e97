/**
 * A notebook's papermill parameters, read from its cell tagged `parameters` (simple `name = value` lines),
 * and the values a person types back, as JSON for the jobs API. Pure, so it is unit-tested.
 */

export interface NotebookParameter {
  name: string;
  /** The default as written in the cell (Python), shown and edited as text. */
  text: string;
  /** The comment after the value, if any: often what the parameter means. */
  comment: string;
}

interface CellLike {
  cell_type?: string;
  metadata?: { tags?: unknown };
  source?: string | string[];
}

const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*[^=]+)?=\s*(.+?)\s*(?:#\s*(.*))?$/;

/** The parameters of the first code cell tagged `parameters`; [] when there is none. */
export function readParameters(notebook: { cells?: CellLike[] }): NotebookParameter[] {
  const cell = (notebook.cells ?? []).find(
    c => c.cell_type === 'code' && Array.isArray(c.metadata?.tags) && c.metadata.tags.includes('parameters')
  );
  if (!cell) {
    return [];
  }
  const source = Array.isArray(cell.source) ? cell.source.join('') : (cell.source ?? '');
  const found: NotebookParameter[] = [];
  for (const line of source.split('\n')) {
    const match = ASSIGNMENT.exec(line.trim());
    if (match && !line.startsWith(' ') && !line.startsWith('\t')) {
      found.push({ name: match[1], text: stripComment(match[2]), comment: match[3] ?? '' });
    }
  }
  return found;
}

/**
 * What a typed value means: a Python literal (numbers, 'strings' or "strings", True/False/None, lists and
 * dicts of those) becomes its JSON value; anything else is taken as a plain string.
 */
export function parseValue(text: string): unknown {
  const trimmed = text.trim();
  const quoted = /^'((?:[^'\\]|\\.)*)'$/.exec(trimmed);
  if (quoted) {
    return quoted[1].replace(/\\'/g, "'").replace(/\\\\/g, '\\');
  }
  try {
    return JSON.parse(pythonToJson(trimmed));
  } catch {
    return text;
  }
}

/** True/False/None and single-quoted strings outside double-quoted ones, as JSON spells them. */
function pythonToJson(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      const end = closing(text, i, '"');
      out += text.slice(i, end + 1);
      i = end + 1;
    } else if (ch === "'") {
      const end = closing(text, i, "'");
      out += JSON.stringify(text.slice(i + 1, end).replace(/\\'/g, "'"));
      i = end + 1;
    } else {
      const word = /^(True|False|None)\b/.exec(text.slice(i));
      if (word) {
        out += { True: 'true', False: 'false', None: 'null' }[word[1] as 'True' | 'False' | 'None'];
        i += word[1].length;
      } else {
        out += ch;
        i += 1;
      }
    }
  }
  return out;
}

function closing(text: string, start: number, quote: string): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') {
      i++;
    } else if (text[i] === quote) {
      return i;
    }
  }
  throw new Error('unterminated string');
}

function stripComment(value: string): string {
  return value.replace(/\s+#.*$/, '');
}
