/**
 * Plain-text output for people: aligned columns, timestamps, and values made safe for a terminal.
 * Machine output is `--json`; nothing here is meant to be parsed.
 */

// Control characters (C0, DEL, C1) could move the cursor or recolour the terminal when a note or
// an actor name carries them: they are shown escaped instead.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/** A value as one line of safe text; undefined and null as `-`. */
export function cell(value: unknown): string {
  if (value === undefined || value === null || value === '') return '-';
  const text =
    typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return text.replace(CONTROL, (char) => {
    if (char === '\n') return '\\n';
    if (char === '\t') return '\\t';
    if (char === '\r') return '\\r';
    return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

// East Asian wide and fullwidth characters take two columns in a terminal (Chinese server names).
const WIDE =
  /[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{20000}-\u{3fffd}]/u;

export function displayWidth(text: string): number {
  let width = 0;
  for (const char of text) width += WIDE.test(char) ? 2 : 1;
  return width;
}

function pad(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - displayWidth(text)));
}

/**
 * Rows under a header, each column as wide as its widest value, two spaces apart; the last
 * column is not padded. Cells are made safe with cell().
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = rows.map((row) => headers.map((_, index) => cell(row[index])));
  const widths = headers.map((header, index) =>
    Math.max(displayWidth(header), ...cells.map((row) => displayWidth(row[index] as string))),
  );
  const line = (values: readonly string[]) =>
    values
      .map((value, index) => (index === values.length - 1 ? value : pad(value, widths[index] as number)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

/** `name: value` lines, names aligned. */
export function formatFields(fields: readonly (readonly [string, unknown])[]): string {
  const width = Math.max(0, ...fields.map(([name]) => displayWidth(name) + 1));
  return fields.map(([name, value]) => `${pad(`${name}:`, width)}  ${cell(value)}`).join('\n');
}

/** Epoch milliseconds as ISO 8601 UTC (with milliseconds when `precise`); `-` when absent. */
export function formatTime(ms: number | undefined, precise = false): string {
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) return '-';
  const iso = new Date(ms).toISOString();
  return precise ? iso : `${iso.slice(0, 19)}Z`;
}

/** A duration in ms for people: `850ms`, `12.5s`, `3m20s`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1_000);
  return seconds === 0 ? `${minutes}m` : `${minutes}m${seconds}s`;
}
