/**
 * Positions in a TOML text: the parser gives values without them, so this re-reads text that
 * has already parsed and reports table headers, keys and array elements with their lines and
 * spans, skipping values of every kind (multi-line strings, arrays and inline tables included).
 * It never throws and always advances, so odd input only costs precision.
 */

/** `[a.b]` or `[[a.b]]` (`array`); `key` is as written, not resolved. */
export type TomlHeader = {
  kind: "header";
  line: number;
  array: boolean;
  key: readonly string[];
};

/**
 * `key = value`. `parent` is where it sits below the current table: [] for a statement, or the
 * path (keys and element indexes) of the inline table that holds it.
 */
export type TomlKey = {
  kind: "key";
  line: number;
  parent: readonly string[];
  key: readonly string[];
  /** Offsets of the value text, without trailing blanks or comment. */
  valueStart: number;
  valueEnd: number;
  /** Line of the value's last character. */
  endLine: number;
};

/** Element `index` of the array at path `parent` below the current table. */
export type TomlElement = {
  kind: "element";
  line: number;
  parent: readonly string[];
  index: number;
};

export type TomlItem = TomlHeader | TomlKey | TomlElement;

/** Deeper nesting than any valid config; beyond it values are skipped, not reported. */
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

/** Offset where each line starts; lines are numbered from 0 by their index here. */
export function lineStarts(source: string): number[] {
  const starts = [0];
  for (let i = 0; i < source.length; i++) if (source[i] === "\n") starts.push(i + 1);
  return starts;
}

/** Headers, keys and array elements of `source`, in text order (a key before its value's). */
export function scanToml(source: string, starts = lineStarts(source)): TomlItem[] {
  return new Scanner(source, starts).run();
}

class Scanner {
  #s: string;
  #pos = 0;
  #starts: readonly number[];
  #items: TomlItem[] = [];

  constructor(source: string, starts: readonly number[]) {
    this.#s = source;
    this.#starts = starts;
  }

  run(): TomlItem[] {
    while (this.#skipBlank()) {
      const start = this.#pos;
      if (this.#s[this.#pos] === "[") this.#header();
      else this.#keyValue([], 0);
      // The rest of the line: a closing bracket or a trailing comment.
      this.#pos = this.#find("\n", this.#pos);
      if (this.#pos === start) this.#pos++;
    }
    return this.#items;
  }

  #lineAt(pos: number): number {
    const starts = this.#starts;
    let [lo, hi] = [0, starts.length - 1];
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  #header(): void {
    const line = this.#lineAt(this.#pos);
    const array = this.#s.startsWith("[[", this.#pos);
    this.#pos += array ? 2 : 1;
    this.#items.push({ kind: "header", line, array, key: this.#key() });
  }

  /** `key = value`; nothing is reported unless both the key and the `=` are there. */
  #keyValue(parent: readonly string[], depth: number): void {
    const line = this.#lineAt(this.#pos);
    const key = this.#key();
    if (key.length === 0) return;
    this.#skipSpaces();
    if (this.#s[this.#pos] !== "=") return;
    this.#pos++;
    this.#skipSpaces();
    const valueStart = this.#pos;
    const item: TomlKey = {
      kind: "key",
      line,
      parent,
      key,
      valueStart,
      valueEnd: valueStart,
      endLine: line,
    };
    this.#items.push(item); // before the items inside its value
    this.#value([...parent, ...key], depth);
    item.valueEnd = Math.max(valueStart, this.#pos);
    item.endLine = this.#lineAt(Math.max(valueStart, item.valueEnd - 1));
  }

  /** A dotted key of bare and quoted parts, decoded; empty if there is none here. */
  #key(): string[] {
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
    return segs;
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

  /** Skips one value at `path`, reporting the elements and inline-table keys inside it. */
  #value(path: readonly string[], depth: number): void {
    const s = this.#s;
    const start = this.#pos;
    const c = s[start];
    if (s.startsWith('"""', start)) this.#multiline('"""');
    else if (s.startsWith("'''", start)) this.#multiline("'''");
    else if (c === '"') this.#basicString();
    else if (c === "'") this.#pos = this.#find("'", start + 1) + 1;
    else if (c === "[" && depth < MAX_DEPTH) this.#array(path, depth);
    else if (c === "{" && depth < MAX_DEPTH) this.#list("}", () => this.#keyValue(path, depth + 1));
    else {
      // Numbers, booleans, dates (which may hold a space): up to a delimiter, trailing blanks
      // not included.
      while (this.#pos < s.length && !",]}#\r\n".includes(s[this.#pos])) this.#pos++;
      while (this.#pos > start && (s[this.#pos - 1] === " " || s[this.#pos - 1] === "\t")) {
        this.#pos--;
      }
    }
  }

  #array(path: readonly string[], depth: number): void {
    let index = 0;
    this.#list("]", () => {
      this.#items.push({ kind: "element", line: this.#lineAt(this.#pos), parent: path, index });
      this.#value([...path, String(index++)], depth + 1);
    });
  }

  /** The entries of an array or inline table, each read by `entry`, up to `close`. */
  #list(close: string, entry: () => void): void {
    this.#pos++;
    while (this.#skipBlank()) {
      const start = this.#pos;
      const c = this.#s[start];
      if (c === close) {
        this.#pos++;
        return;
      }
      if (c === ",") this.#pos++;
      else entry();
      if (this.#pos <= start) this.#pos = start + 1;
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
}
