/**
 * `den add-peer` / `den rm-peer` edits of config.toml that keep the user's comments, layout and
 * line endings. Pure text in, text out: the input must be a valid config, the output is parsed
 * with `parseConfig` before it is returned (so a bad name, address or fingerprint throws the
 * ConfigError and the caller writes nothing), and the parsed result is compared with the
 * intended change, so an edit can never alter anything else.
 *
 * The TOML scanner finds statements (table headers and key/value pairs) with their lines; the
 * text between them (blank lines, comments) is kept as is.
 */
import { DenError } from "../errors.ts";
import { MAX_CONFIG_BYTES, parseConfig } from "./load.ts";
import type { Config, PeerConfig } from "./schema.ts";
import { lineStarts, scanToml, type TomlKey } from "./toml_scan.ts";
import { normalizeFingerprint } from "./validators.ts";

export type PeerEdit = { name: string; address?: string; fingerprint?: string };

/** One `[[peers]]` table: its header line, the statements in it, and where the next table starts. */
type PeerBlock = {
  header: number;
  /** Line of the next table header, or the line count. */
  next: number;
  /** The last line holding a statement of this block (multi-line values included). */
  lastContent: number;
  /** Its statements; keys inside their values are not listed. */
  entries: TomlKey[];
};

/** The text as lines, and its `[[peers]]` blocks in order. */
class Layout {
  readonly source: string;
  readonly lineStarts: number[];
  readonly eol: string;
  readonly blocks: PeerBlock[];

  constructor(source: string) {
    this.source = source;
    this.lineStarts = lineStarts(source);
    const nl = source.indexOf("\n");
    this.eol = nl > 0 && source[nl - 1] === "\r" ? "\r\n" : "\n";
    this.blocks = [];
    let current: PeerBlock | null = null;
    for (const st of scanToml(source, this.lineStarts)) {
      if (st.kind === "header") {
        if (current) current.next = st.line;
        current = null;
        if (st.array && st.key.length === 1 && st.key[0] === "peers") {
          current = { header: st.line, next: this.lineCount, lastContent: st.line, entries: [] };
          this.blocks.push(current);
        }
      } else if (current && st.kind === "key" && st.parent.length === 0) {
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
