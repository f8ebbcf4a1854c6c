/**
 * Line numbers for key paths in a TOML text, so validation errors can say `config.toml:12:`.
 * The parser gives values without positions; this scanner re-reads the (already parsed) text
 * and notes where each key, table header and array element starts. It never throws and always
 * advances, so odd input only costs precision.
 */

/** Line (1-based) where `path` is defined; array elements use their index: ["peers", "1"]. */
export type Locate = (path: readonly string[]) => number | undefined;

/** Deeper nesting than any valid config; beyond it values are skipped, not located. */
const MAX_DEPTH = 64;
const BARE_KEY = /[A-Za-z0-9_-]/;
const ESCAPES: Readonly<Record<string, string>> = Object.freeze({
  b: "\b",
  t: "\t",
  n: "\n",
  f: "\f",
  r: "\r",
  e: "\x1b",
  '"': '"',
  "\\": "\\",
});

const keyOf = (path: readonly string[]) => JSON.stringify(path);

export function lineLocator(source: string): Locate {
  const lines = new Map<string, number>();
  new Scanner(source, lines).run();
  return (path) => lines.get(keyOf(path));
}

class Scanner {
  #s: string;
  #pos = 0;
  #lines: Map<string, number>;
  #lineStarts: number[] = [0];
  /** Current element index of each array of tables, by resolved path. */
  #arrays = new Map<string, number>();

  constructor(source: string, lines: Map<string, number>) {
    this.#s = source;
    this.#lines = lines;
    for (let i = 0; i < source.length; i++) if (source[i] === "\n") this.#lineStarts.push(i + 1);
  }

  run(): void {
    let table: string[] = [];
    while (this.#skipBlank()) {
      const start = this.#pos;
      if (this.#s[this.#pos] === "[") table = this.#header();
      else this.#keyValue(table);
      this.#skipLine();
      if (this.#pos === start) this.#pos++;
    }
  }

  #lineAt(pos: number): number {
    let [lo, hi] = [0, this.#lineStarts.length - 1];
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#lineStarts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }

  /** Records `path` (overwriting when `exact`) and, if not yet known, each of its prefixes. */
  #mark(path: string[], line: number, exact = true, from = 1): void {
    for (let n = from; n <= path.length; n++) {
      const k = keyOf(path.slice(0, n));
      if ((exact && n === path.length) || !this.#lines.has(k)) this.#lines.set(k, line);
    }
  }

  /** `[a.b]` or `[[a.b]]`; returns the resolved table path (array elements by index). */
  #header(): string[] {
    const line = this.#lineAt(this.#pos);
    const isArray = this.#s.startsWith("[[", this.#pos);
    this.#pos += isArray ? 2 : 1;
    const segs = this.#key() ?? [];
    const path = this.#resolve(segs.slice(0, -1));
    if (segs.length > 0) path.push(segs[segs.length - 1]);
    if (!isArray) {
      this.#mark(path, line);
      return path;
    }
    const k = keyOf(path);
    const index = (this.#arrays.get(k) ?? -1) + 1;
    this.#arrays.set(k, index);
    path.push(String(index));
    this.#mark(path, line);
    return path;
  }

  /** Inserts the current element index after each segment naming an array of tables. */
  #resolve(segs: string[]): string[] {
    const out: string[] = [];
    for (const seg of segs) {
      out.push(seg);
      const index = this.#arrays.get(keyOf(out));
      if (index !== undefined) out.push(String(index));
    }
    return out;
  }

  #keyValue(table: string[]): void {
    const line = this.#lineAt(this.#pos);
    const key = this.#key();
    if (!key) return;
    this.#skipSpaces();
    if (this.#s[this.#pos] !== "=") return;
    this.#pos++;
    const path = [...table, ...key];
    this.#mark(path, line, true, table.length + 1);
    this.#value(path, 0);
  }

  /** A dotted key of bare and quoted parts, or null if there is none here. */
  #key(): string[] | null {
    const segs: string[] = [];
    for (;;) {
      this.#skipSpaces();
      const seg = this.#keyPart();
      if (seg === null) break;
      segs.push(seg);
      this.#skipSpaces();
      if (this.#s[this.#pos] !== ".") break;
      this.#pos++;
    }
    return segs.length > 0 ? segs : null;
  }

  #keyPart(): string | null {
    const s = this.#s;
    const c = s[this.#pos];
    if (c === '"') return this.#basicString();
    if (c === "'") {
      const end = this.#find("'", this.#pos + 1);
      const text = s.slice(this.#pos + 1, end);
      this.#pos = end + 1;
      return text;
    }
    const start = this.#pos;
    while (this.#pos < s.length && BARE_KEY.test(s[this.#pos])) this.#pos++;
    return this.#pos > start ? s.slice(start, this.#pos) : null;
  }

  /** A one-line "…" string with its escapes decoded (keys may be written this way). */
  #basicString(): string {
    const s = this.#s;
    let out = "";
    this.#pos++;
    while (this.#pos < s.length && s[this.#pos] !== '"' && s[this.#pos] !== "\n") {
      const c = s[this.#pos];
      if (c !== "\\") {
        out += c;
        this.#pos++;
        continue;
      }
      const e = s[this.#pos + 1] ?? "";
      const hexLen = e === "u" ? 4 : e === "U" ? 8 : e === "x" ? 2 : 0;
      if (hexLen > 0) {
        const code = parseInt(s.slice(this.#pos + 2, this.#pos + 2 + hexLen), 16);
        out += Number.isInteger(code) && code <= 0x10ffff ? String.fromCodePoint(code) : "";
        this.#pos += 2 + hexLen;
      } else {
        out += ESCAPES[e] ?? e;
        this.#pos += 2;
      }
    }
    this.#pos++;
    return out;
  }

  /** Skips one value, recording the lines of array elements and inline-table keys inside it. */
  #value(path: string[], depth: number): void {
    this.#skipSpaces();
    const s = this.#s;
    const c = s[this.#pos];
    if (s.startsWith('"""', this.#pos)) this.#multiline('"""');
    else if (s.startsWith("'''", this.#pos)) this.#multiline("'''");
    else if (c === '"') this.#basicString();
    else if (c === "'") this.#pos = this.#find("'", this.#pos + 1) + 1;
    else if (c === "[" && depth < MAX_DEPTH) this.#array(path, depth);
    else if (c === "{" && depth < MAX_DEPTH) this.#inlineTable(path, depth);
    else {
      while (this.#pos < s.length && !",]}#\n".includes(s[this.#pos])) this.#pos++;
    }
  }

  #array(path: string[], depth: number): void {
    this.#pos++;
    for (let i = 0; this.#skipBlank();) {
      const start = this.#pos;
      const c = this.#s[this.#pos];
      if (c === "]") {
        this.#pos++;
        return;
      }
      if (c !== ",") {
        const elem = [...path, String(i)];
        this.#mark(elem, this.#lineAt(this.#pos), true, elem.length);
        this.#value(elem, depth + 1);
        this.#skipBlank();
        i++;
      }
      if (this.#s[this.#pos] === ",") this.#pos++;
      if (this.#pos === start) this.#pos++;
    }
  }

  #inlineTable(path: string[], depth: number): void {
    this.#pos++;
    while (this.#skipBlank()) {
      const start = this.#pos;
      const c = this.#s[this.#pos];
      if (c === "}") {
        this.#pos++;
        return;
      }
      const line = this.#lineAt(this.#pos);
      const key = this.#key();
      this.#skipSpaces();
      if (key && this.#s[this.#pos] === "=") {
        this.#pos++;
        const full = [...path, ...key];
        this.#mark(full, line, true, path.length + 1);
        this.#value(full, depth + 1);
        this.#skipBlank();
      }
      if (this.#s[this.#pos] === ",") this.#pos++;
      if (this.#pos === start) this.#pos++;
    }
  }

  #multiline(quote: string): void {
    const s = this.#s;
    this.#pos += 3;
    while (this.#pos < s.length && !s.startsWith(quote, this.#pos)) {
      this.#pos += quote === '"""' && s[this.#pos] === "\\" ? 2 : 1;
    }
    this.#pos += 3;
    // Up to two quotes right before the closing delimiter belong to the string.
    for (let n = 0; n < 2 && s[this.#pos] === quote[0]; n++) this.#pos++;
  }

  /** Index of `ch` from `from` on the same line, or the line end. */
  #find(ch: string, from: number): number {
    const s = this.#s;
    let i = from;
    while (i < s.length && s[i] !== ch && s[i] !== "\n") i++;
    return i;
  }

  #skipSpaces(): void {
    while (this.#s[this.#pos] === " " || this.#s[this.#pos] === "\t") this.#pos++;
  }

  /** Skips whitespace, newlines and comments; false at the end of the text. */
  #skipBlank(): boolean {
    const s = this.#s;
    while (this.#pos < s.length) {
      const c = s[this.#pos];
      if (c === "#") this.#pos = this.#find("\n", this.#pos);
      else if (c === " " || c === "\t" || c === "\r" || c === "\n") this.#pos++;
      else return true;
    }
    return false;
  }

  /** Skips the rest of the current line (a trailing comment or a closing bracket). */
  #skipLine(): void {
    this.#pos = this.#find("\n", this.#pos);
  }
}
