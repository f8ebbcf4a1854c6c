/** Terminal output helpers shared by commands: JSON, aligned key/value tables, errors. */
import { DenError } from "../errors.ts";

const encoder = new TextEncoder();

export function writeOut(text: string): void {
  writeAll(Deno.stdout, text);
}

export function writeErr(text: string): void {
  writeAll(Deno.stderr, text);
}

function writeAll(w: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let off = 0;
  try {
    while (off < bytes.length) off += w.writeSync(bytes.subarray(off));
  } catch (err) {
    // The reader went away (`den status | head -1`): nothing left to tell it.
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
}

export function printJson(value: unknown): void {
  writeOut(JSON.stringify(value, null, 2) + "\n");
}

/** Two aligned columns, for `den status` and friends. */
export function formatTable(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n") + "\n";
}

export function printError(err: unknown): number {
  if (err instanceof DenError) {
    writeErr(`den: error: ${err.message}\n`);
    if (err.hint) writeErr(`den: hint: ${err.hint}\n`);
    return err.exit;
  }
  const msg = err instanceof Error ? err.message : String(err);
  writeErr(`den: error: ${msg}\n`);
  return 1;
}

export function printWarning(text: string): void {
  writeErr(`den: warning: ${text}\n`);
}

export function formatDuration(seconds: number): string {
  const d = Math.floor(seconds / 86400), h = Math.floor(seconds / 3600) % 24;
  const m = Math.floor(seconds / 60) % 60, s = seconds % 60;
  if (d) return `${d}d ${h}h ${m}m`;
  if (h) return `${h}h ${m}m ${s}s`;
  return m ? `${m}m ${s}s` : `${s}s`;
}

/** Left-aligned columns under a header row. */
export function formatRows(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(head), ...rows.map(line)].join("\n") + "\n";
}

/** One JSON document with --json, else the text `render` makes of the same value. */
export function printResult<T>(json: boolean, value: T, render: (v: T) => string): number {
  if (json) printJson(value);
  else writeOut(render(value));
  return 0;
}
