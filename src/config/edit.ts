/**
 * `den add-peer` / `den rm-peer` edits of config.toml that keep the user's comments, layout and
 * line endings. Pure text in, text out: the input must be a valid config, the output is parsed
 * with `parseConfig` before it is returned (so a bad name, address or fingerprint throws the
 * ConfigError and the caller writes nothing), and the parsed result is compared with the
 * intended change, so an edit can never alter anything else.
 *
 * A small TOML lexer finds statements (table headers and key/value pairs) with their lines; the
 * text between them (blank lines, comments) is kept as is.
 */
import { DenError } from "../errors.ts";
import { MAX_CONFIG_BYTES, parseConfig } from "./load.ts";
import type { Config, PeerConfig } from "./schema.ts";
import { normalizeFingerprint } from "./validators.ts";

export type PeerEdit = { name: string; address?: string; fingerprint?: string };

type Header = { kind: "header"; line: number; endLine: number; array: boolean; key: string[] };
type KeyValue = {
  kind: "kv";
  line: number;
  endLine: number;
  key: string[];
  /** Offsets of the value text (without the trailing comment). */
  valueStart: number;
  valueEnd: number;
};
type Statement = Header | KeyValue;

const BARE_KEY = /[A-Za-z0-9_-]/;
const MAX_DEPTH = 64;
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

/** Statements of a TOML text that has already parsed; never throws, always advances. */
class Lexer {
  #s: string;
  #pos = 0;
  #lineStarts: readonly number[];

  constructor(source: string, lineStarts: readonly number[]) {
    this.#s = source;
    this.#lineStarts = lineStarts;
  }

  run(): Statement[] {
    const out: Statement[] = [];
    while (this.#skipBlank()) {
      const start = this.#pos;
      out.push(this.#s[this.#pos] === "[" ? this.#header() : this.#keyValue());
      this.#pos = this.#find("\n", this.#pos);
      if (this.#pos === start) this.#pos++;
    }
    return out;
  }

  #lineAt(pos: number): number {
    const starts = this.#lineStarts;
    let [lo, hi] = [0, starts.length - 1];
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  #header(): Header {
    const line = this.#lineAt(this.#pos);
    const array = this.#s.startsWith("[[", this.#pos);
    this.#pos += array ? 2 : 1;
    const key = this.#key();
    return { kind: "header", line, endLine: line, array, key };
  }

  #keyValue(): KeyValue {
    const line = this.#lineAt(this.#pos);
    const key = this.#key();
    this.#skipSpaces();
    if (this.#s[this.#pos] === "=") this.#pos++;
    this.#skipSpaces();
    const valueStart = this.#pos;
    this.#value(0);
    const valueEnd = Math.max(valueStart, this.#pos);
    const endLine = this.#lineAt(Math.max(valueStart, valueEnd - 1));
    return { kind: "kv", line, endLine, key, valueStart, valueEnd };
  }

  /** A dotted key of bare and quoted parts, decoded. */
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

  /** A one-line "…" string, escapes decoded. */
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

  /** Skips one value: strings of every kind, arrays and inline tables over several lines. */
  #value(depth: number): void {
    const s = this.#s;
    const c = s[this.#pos];
    if (s.startsWith('"""', this.#pos)) this.#multiline('"""');
    else if (s.startsWith("'''", this.#pos)) this.#multiline("'''");
    else if (c === '"') this.#basicString();
    else if (c === "'") this.#pos = this.#find("'", this.#pos + 1) + 1;
    else if ((c === "[" || c === "{") && depth < MAX_DEPTH) this.#container(c, depth);
    else {
      // Numbers, booleans, dates (which may hold a space): up to a delimiter, trailing blanks
      // not included.
      while (this.#pos < s.length && !",]}#\r\n".includes(s[this.#pos])) this.#pos++;
      while (this.#pos > 0 && (s[this.#pos - 1] === " " || s[this.#pos - 1] === "\t")) {
        this.#pos--;
      }
    }
  }

  #container(open: string, depth: number): void {
    const close = open === "[" ? "]" : "}";
    this.#pos++;
    while (this.#skipBlank()) {
      const start = this.#pos;
      const c = this.#s[this.#pos];
      if (c === close) {
        this.#pos++;
        return;
      }
      if (c === ",") this.#pos++;
      else {
        if (open === "{") {
          this.#key();
          this.#skipSpaces();
          if (this.#s[this.#pos] === "=") this.#pos++;
          this.#skipSpaces();
        }
        this.#value(depth + 1);
      }
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

/** One `[[peers]]` table: its header line, the statements in it, and where the next table starts. */
type PeerBlock = {
  header: number;
  /** Line of the next table header, or the line count. */
  next: number;
  /** The last line holding a statement of this block (multi-line values included). */
  lastContent: number;
  entries: KeyValue[];
};

/** The text as lines, and its `[[peers]]` blocks in order. */
class Layout {
  readonly source: string;
  readonly lineStarts: number[];
  readonly eol: string;
  readonly blocks: PeerBlock[];

  constructor(source: string) {
    this.source = source;
    this.lineStarts = [0];
    for (let i = 0; i < source.length; i++) if (source[i] === "\n") this.lineStarts.push(i + 1);
    const nl = source.indexOf("\n");
    this.eol = nl > 0 && source[nl - 1] === "\r" ? "\r\n" : "\n";
    const statements = new Lexer(source, this.lineStarts).run();
    this.blocks = [];
    let current: PeerBlock | null = null;
    for (const st of statements) {
      if (st.kind === "header") {
        if (current) current.next = st.line;
        current = null;
        if (st.array && st.key.length === 1 && st.key[0] === "peers") {
          current = { header: st.line, next: this.lineCount, lastContent: st.line, entries: [] };
          this.blocks.push(current);
        }
      } else if (current) {
        current.entries.push(st);
        current.lastContent = Math.max(current.lastContent, st.endLine);
      }
    }
  }

  get lineCount(): number {
    return this.lineStarts.length;
  }

  /** Offset where line `i` starts; the text length past the last line. */
  offset(i: number): number {
    return i < this.lineCount ? this.lineStarts[i] : this.source.length;
  }

  /** Line `i` without its line ending. */
  text(i: number): string {
    return this.source.slice(this.offset(i), this.offset(i + 1)).replace(/\r?\n$/, "");
  }

  isBlank(i: number): boolean {
    return this.text(i).trim() === "";
  }

  isComment(i: number): boolean {
    return this.text(i).trimStart().startsWith("#");
  }

  /**
   * First line of the comment paragraph directly above the header at `next` (no blank line
   * between), which describes that table and is kept; `next` when there is none. Never reaches
   * into the statements of `block`.
   */
  attachedCommentStart(block: PeerBlock): number {
    let k = block.next;
    if (k >= this.lineCount) return k;
    while (k - 1 > block.lastContent && this.isComment(k - 1)) k--;
    return k;
  }
}

type Edit = { start: number; end: number; text: string };

function applyEdits(source: string, edits: Edit[]): string {
  let out = source;
  for (const e of [...edits].sort((a, b) => b.start - a.start)) {
    out = out.slice(0, e.start) + e.text + out.slice(e.end);
  }
  return out;
}

/**
 * A TOML basic string. Lone surrogates become U+FFFD and DEL is escaped, so the output always
 * parses and a bad value is reported by validation, not as a syntax error.
 */
function tomlString(s: string): string {
  return JSON.stringify(s.toWellFormed()).replace(/\x7f/g, "\\u007f");
}

/** The layout, after checking that every peer is a `[[peers]]` table that can be edited. */
function layoutOf(source: string, config: Config, fileLabel: string): Layout {
  const layout = new Layout(source);
  if (layout.blocks.length !== config.peers.length) {
    throw new DenError(
      "config_not_editable",
      `${fileLabel}: the peers are not written as [[peers]] tables, so den cannot edit them`,
      {
        hint: `rewrite them in ${fileLabel} as [[peers]] tables (see docs/CONFIG.md), ` +
          "or make this change by hand and run den reload",
      },
    );
  }
  return layout;
}

/** Parses `text`, checks its size, and that it equals `expected`: nothing else changed. */
function verified(text: string, expected: Config, fileLabel: string): string {
  if (new TextEncoder().encode(text).length > MAX_CONFIG_BYTES) {
    throw new DenError(
      "config_too_large",
      `${fileLabel} would be larger than ${MAX_CONFIG_BYTES} bytes`,
      {
        hint: "a config is a few KiB; check that this is the right file",
      },
    );
  }
  const after = parseConfig(text, fileLabel);
  if (JSON.stringify(after) !== JSON.stringify(expected)) {
    throw new DenError(
      "config_edit_failed",
      `editing ${fileLabel} would have changed more than the peer; nothing was written`,
      { hint: "make the change by hand and run den reload (and please report this as a bug)" },
    );
  }
  return text;
}

/** The fingerprint as the config stores it, or the text as given when it is not valid. */
function canonicalFingerprint(fp: string): string {
  try {
    return normalizeFingerprint(fp);
  } catch {
    return fp; // written as given, so validation of the result names the problem
  }
}

/**
 * Adds `peer` as a new `[[peers]]` table (after the last one, or at the end of the file when
 * there is none), or, when a `[[peers]]` table with that name exists, sets its `address` and
 * `fingerprint` in place (keys left undefined are not touched; a missing key is added after the
 * table's last key). Comments, blank lines and line endings are kept. Throws the `ConfigError`
 * of `source` when it is invalid, and of the result when a value is invalid.
 */
export function addPeerToConfig(source: string, peer: PeerEdit, fileLabel = "config.toml"): string {
  const before = parseConfig(source, fileLabel);
  const layout = layoutOf(source, before, fileLabel);
  const eol = layout.eol;
  const fingerprint = peer.fingerprint === undefined
    ? undefined
    : canonicalFingerprint(peer.fingerprint);
  const expected: Config = structuredClone(before);
  const index = before.peers.findIndex((p) => p.name === peer.name);

  if (index >= 0) {
    const block = layout.blocks[index];
    const edits: Edit[] = [];
    const added: string[] = [];
    const indentLine = block.entries.length > 0 ? block.entries[0].line : block.header;
    const indent = /^[ \t]*/.exec(layout.text(indentLine))![0];
    const target: PeerConfig = expected.peers[index];
    for (const [key, value] of [["address", peer.address], ["fingerprint", fingerprint]] as const) {
      if (value === undefined) continue;
      target[key] = value;
      const kv = block.entries.find((e) => e.key.length === 1 && e.key[0] === key);
      if (kv) edits.push({ start: kv.valueStart, end: kv.valueEnd, text: tomlString(value) });
      else added.push(`${indent}${key} = ${tomlString(value)}`);
    }
    if (added.length > 0) {
      const after = block.lastContent + 1;
      const at = layout.offset(after);
      const text = after < layout.lineCount
        ? added.map((l) => l + eol).join("")
        : added.map((l) => eol + l).join(""); // the block ends the file without a line ending
      edits.push({ start: at, end: at, text });
    }
    return verified(applyEdits(source, edits), expected, fileLabel);
  }

  expected.peers.push({
    name: peer.name,
    address: peer.address ?? null,
    fingerprint: fingerprint ?? null,
  });
  const lines = [`[[peers]]`, `name = ${tomlString(peer.name)}`];
  if (peer.address !== undefined) lines.push(`address = ${tomlString(peer.address)}`);
  if (fingerprint !== undefined) lines.push(`fingerprint = ${tomlString(fingerprint)}`);
  const blockText = lines.map((l) => l + eol).join("");

  const last = layout.blocks.at(-1);
  if (last && last.next < layout.lineCount) {
    // Right after the last [[peers]] table, before the comments that introduce the next table.
    const at = layout.attachedCommentStart(last);
    const gap = layout.isBlank(at - 1) ? "" : eol;
    const text = gap + blockText + eol;
    return verified(
      applyEdits(source, [{ start: layout.offset(at), end: layout.offset(at), text }]),
      expected,
      fileLabel,
    );
  }
  // At the end of the file, after one blank line.
  let text = source;
  if (text !== "" && !text.endsWith("\n")) text += eol;
  const lastLine = text.replace(/\r?\n$/, "").split("\n").at(-1) ?? "";
  if (text !== "" && lastLine.trim() !== "") text += eol;
  return verified(text + blockText, expected, fileLabel);
}

/**
 * Removes the `[[peers]]` table named `name`: its header through its last key, with comments
 * inside it or directly below its last key, and the blank lines after it. Comments above its
 * header and the comment paragraph that introduces the next table are kept. `removed` is
 * false (and `text` is `source`) when no such peer is configured.
 */
export function removePeerFromConfig(
  source: string,
  name: string,
  fileLabel = "config.toml",
): { text: string; removed: boolean } {
  const before = parseConfig(source, fileLabel);
  const index = before.peers.findIndex((p) => p.name === name);
  if (index < 0) return { text: source, removed: false };
  const layout = layoutOf(source, before, fileLabel);
  const block = layout.blocks[index];
  const expected: Config = structuredClone(before);
  expected.peers.splice(index, 1);

  // The block's own lines: header .. last statement, plus a comment run directly below it
  // unless that run leads straight into the next header (then it introduces that table).
  let end = block.lastContent;
  let k = end + 1;
  while (k < block.next && layout.isComment(k)) k++;
  if (k > end + 1 && (k >= layout.lineCount || k < block.next)) end = k - 1;

  let from = block.header;
  let to = end + 1; // exclusive
  let onlyBlankAfter = true;
  for (let i = to; i < layout.lineCount; i++) {
    if (!layout.isBlank(i)) {
      onlyBlankAfter = false;
      break;
    }
  }
  if (onlyBlankAfter) {
    // The table ended the file: drop the blank lines before it too, and end where the previous
    // line ends.
    to = layout.lineCount;
    while (from > 0 && layout.isBlank(from - 1)) from--;
  } else if (from === 0 || layout.isBlank(from - 1) || layout.isComment(from - 1)) {
    // The blank lines after the table go with it, so what came before it (a blank line, or a
    // comment directly above its header) now directly precedes what followed it.
    while (to < layout.lineCount && layout.isBlank(to)) to++;
  }
  const text = applyEdits(source, [{
    start: layout.offset(from),
    end: layout.offset(to),
    text: "",
  }]);
  return { text: verified(text, expected, fileLabel), removed: true };
}
