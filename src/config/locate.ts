/**
 * Line numbers for key paths in a TOML text, so validation errors can say `config.toml:12:`.
 * The scanner reports where each key, table header and array element starts; this resolves
 * them to full paths. Like the scanner it never throws, so odd input only costs precision.
 */
import { scanToml } from "./toml_scan.ts";

/** Line (1-based) where `path` is defined; array elements use their index: ["peers", "1"]. */
export type Locate = (path: readonly string[]) => number | undefined;

const keyOf = (path: readonly string[]) => JSON.stringify(path);

export function lineLocator(source: string): Locate {
  const lines = new Map<string, number>();
  /** Records `path` (overwriting when `exact`) and, if not yet known, each of its prefixes. */
  const mark = (path: readonly string[], line: number, exact = true, from = 1) => {
    for (let n = from; n <= path.length; n++) {
      const k = keyOf(path.slice(0, n));
      if ((exact && n === path.length) || !lines.has(k)) lines.set(k, line + 1);
    }
  };
  const tables = new TablePaths();
  let table: readonly string[] = [];
  for (const item of scanToml(source)) {
    if (item.kind === "header") {
      table = tables.resolveHeader(item.key, item.array);
      mark(table, item.line);
    } else if (item.kind === "key") {
      const path = [...table, ...item.parent, ...item.key];
      mark(path, item.line, true, table.length + item.parent.length + 1);
    } else {
      const path = [...table, ...item.parent, String(item.index)];
      mark(path, item.line, true, path.length);
    }
  }
  return (path) => lines.get(keyOf(path));
}

/** Resolves header keys to table paths, numbering the elements of each array of tables. */
class TablePaths {
  /** Current element index of each array of tables, by resolved path. */
  #arrays = new Map<string, number>();

  /** The path of `[key]`, or of the next element of `[[key]]` (its index as the last segment). */
  resolveHeader(key: readonly string[], array: boolean): string[] {
    const path = this.#resolve(key.slice(0, -1));
    if (key.length > 0) path.push(key[key.length - 1]);
    if (!array) return path;
    const k = keyOf(path);
    const index = (this.#arrays.get(k) ?? -1) + 1;
    this.#arrays.set(k, index);
    path.push(String(index));
    return path;
  }

  /** Inserts the current element index after each segment naming an array of tables. */
  #resolve(segs: readonly string[]): string[] {
    const out: string[] = [];
    for (const seg of segs) {
      out.push(seg);
      const index = this.#arrays.get(keyOf(out));
      if (index !== undefined) out.push(String(index));
    }
    return out;
  }
}
