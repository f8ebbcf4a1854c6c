/**
 * Dotenv files: parse and serialise, plus shell and JSON output for `den env`.
 *
 * The accepted syntax is the common subset of the `dotenv` npm package, docker compose and
 * python-dotenv, so a file den writes reads back the same in those tools and vice versa.
 * Pure: no I/O, no globals.
 */

export interface DotenvEntry {
  key: string;
  value: string;
  /** 1-based line where the kept definition starts. */
  line: number;
}

/** A malformed dotenv file; `line` is 1-based and the message says how to fix it. */
export class DotenvError extends Error {
  constructor(readonly line: number, message: string) {
    super(message);
    this.name = "DotenvError";
  }
}

export const MAX_DOTENV_BYTES = 1024 * 1024;
export const MAX_DOTENV_ENTRIES = 10_000;
export const MAX_KEY_LENGTH = 128;

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SIMPLE_VALUE_RE = /^[A-Za-z0-9_./:@+-]*$/;
const BLANK_OR_COMMENT_RE = /^[ \t]*(?:#.*)?$/;
const DOUBLE_QUOTE_ESCAPES: Readonly<Record<string, string>> = Object.freeze({
  n: "\n",
  r: "\r",
  t: "\t",
  "\\": "\\",
  '"': '"',
  $: "$",
});

/**
 * Parses dotenv text. A key defined twice keeps its last value (and that definition's line)
 * but stays where it first appeared, so output order follows the file.
 */
export function parseDotenv(text: string): DotenvEntry[] {
  // UTF-8 never takes fewer bytes than UTF-16 code units, so the cheap length test goes first.
  if (text.length > MAX_DOTENV_BYTES || new TextEncoder().encode(text).length > MAX_DOTENV_BYTES) {
    throw new DotenvError(
      0,
      `dotenv text is larger than ${MAX_DOTENV_BYTES} bytes (1 MiB); split it into smaller files`,
    );
  }
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  // Same as the dotenv package: CRLF and lone CR are line breaks.
  text = text.replace(/\r\n?/g, "\n");

  // A Map, not an object: a key like `__proto__` must be an ordinary key.
  const byKey = new Map<string, DotenvEntry>();
  let count = 0;
  let pos = 0;
  let line = 1;

  while (pos < text.length) {
    let eol = text.indexOf("\n", pos);
    if (eol < 0) eol = text.length;
    const raw = text.slice(pos, eol);
    if (BLANK_OR_COMMENT_RE.test(raw)) {
      pos = eol + 1;
      line++;
      continue;
    }

    const startLine = line;
    const assign = parseAssignment(raw, startLine);
    if (++count > MAX_DOTENV_ENTRIES) {
      throw new DotenvError(
        startLine,
        `line ${startLine}: more than ${MAX_DOTENV_ENTRIES} entries; split the file`,
      );
    }

    // Offset of the value's first character within the whole text.
    const valueStart = pos + assign.valueOffset;
    const quote = text[valueStart];
    let value: string;
    let end: number; // just past the closing quote
    if (quote === "'" || quote === '"') {
      const q = quote === "'" ? readSingle(text, valueStart + 1) : readDouble(text, valueStart + 1);
      if (q === null) {
        throw new DotenvError(
          startLine,
          `line ${startLine}: ${assign.key} has an unterminated ${quote} quote; ` +
            `add the closing ${quote}` +
            (quote === '"' ? ` (write \\" for a literal quote inside)` : ""),
        );
      }
      value = q.value;
      end = q.end;
    } else {
      const rest = raw.slice(assign.valueOffset);
      // A comment needs whitespace before `#` so that values like `a#b` survive.
      const hash = rest.search(/[ \t]#/);
      // `KEY= # note` leaves an empty value: the blank before `#` was eaten with the `=`.
      const spaced = assign.valueOffset > 0 && /[ \t]/.test(raw[assign.valueOffset - 1]) &&
        rest.startsWith("#");
      value = spaced ? "" : (hash < 0 ? rest : rest.slice(0, hash)).trim();
      end = eol;
    }

    // Count the newlines a quoted value spanned.
    for (let i = valueStart; i < end; i++) if (text.charCodeAt(i) === 10) line++;
    let tailEnd = text.indexOf("\n", end);
    if (tailEnd < 0) tailEnd = text.length;
    const tail = text.slice(end, tailEnd);
    if (!/^(?:[ \t]*|[ \t]+#.*)$/.test(tail)) {
      throw new DotenvError(
        line,
        `line ${line}: unexpected text ${
          JSON.stringify(tail.trim())
        } after the closing quote of ${assign.key}; ` +
          `put the whole value inside the quotes, or start a comment with ' #'`,
      );
    }

    const prev = byKey.get(assign.key);
    if (prev) {
      prev.value = value;
      prev.line = startLine;
    } else {
      byKey.set(assign.key, { key: assign.key, value, line: startLine });
    }
    pos = tailEnd + 1;
    line++;
  }
  return [...byKey.values()];
}

/** Splits `[export ]KEY = value` and says where the value starts within `raw`. */
function parseAssignment(raw: string, line: number): { key: string; valueOffset: number } {
  // `export` is a prefix only when a name follows, so `export=1` still defines `export`.
  const prefix = /^[ \t]*(?:export[ \t]+(?=[^ \t=]))?/.exec(raw)![0].length;
  const eq = raw.indexOf("=", prefix);
  if (eq < 0) {
    throw new DotenvError(
      line,
      `line ${line}: expected KEY=VALUE but found ${JSON.stringify(raw.trim())}; ` +
        `add '=' after the key, or start the line with '#' to make it a comment`,
    );
  }
  const key = raw.slice(prefix, eq).replace(/[ \t]+$/, "");
  checkKey(key, (msg) => new DotenvError(line, `line ${line}: ${msg}`));
  const valueOffset = eq + 1 + /^[ \t]*/.exec(raw.slice(eq + 1))![0].length;
  return { key, valueOffset };
}

function checkKey(key: string, fail: (msg: string) => Error): void {
  if (key === "") throw fail("missing key before '='; write KEY=VALUE");
  if (key.length > MAX_KEY_LENGTH) {
    throw fail(
      `key ${
        JSON.stringify(key.slice(0, 20) + "…")
      } is longer than ${MAX_KEY_LENGTH} characters; ` +
        `use a shorter name`,
    );
  }
  if (!KEY_RE.test(key)) {
    throw fail(
      `invalid key ${JSON.stringify(key)}; keys must start with a letter or '_' and contain ` +
        `only letters, digits and '_'`,
    );
  }
}

function readSingle(text: string, from: number): { value: string; end: number } | null {
  const close = text.indexOf("'", from);
  return close < 0 ? null : { value: text.slice(from, close), end: close + 1 };
}

function readDouble(text: string, from: number): { value: string; end: number } | null {
  let out = "";
  let i = from;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') return { value: out, end: i + 1 };
    if (c === "\\" && i + 1 < text.length) {
      const next = text[i + 1];
      // Unknown escapes keep their backslash, like the shells users copy values from.
      out += DOUBLE_QUOTE_ESCAPES[next] ?? c + next;
      i += 2;
      continue;
    }
    out += c;
    i++;
  }
  return null;
}

type KeyValue = { key: string; value: string };

/** Dotenv text that parseDotenv reads back to exactly `entries`. */
export function formatDotenv(entries: KeyValue[]): string {
  return entries.map(({ key, value }) => {
    checkFormatKey(key);
    return `${key}=${SIMPLE_VALUE_RE.test(value) ? value : quoteDouble(value)}\n`;
  }).join("");
}

function quoteDouble(value: string): string {
  // `$` is escaped so tools that expand variables (docker compose) read the same value.
  return '"' + value.replace(/[\\"$\n\r\t]/g, (c) => {
    switch (c) {
      case "\n":
        return "\\n";
      case "\r":
        return "\\r";
      case "\t":
        return "\\t";
      default:
        return "\\" + c;
    }
  }) + '"';
}

/** `export KEY='value'` lines for `eval` in POSIX sh; single quotes make every byte literal. */
export function formatShell(entries: KeyValue[]): string {
  return entries.map(({ key, value }) => {
    // An invalid name would let a key inject shell code.
    checkFormatKey(key);
    return `export ${key}='${value.replaceAll("'", `'\\''`)}'\n`;
  }).join("");
}

/** A pretty JSON object in the given key order; a repeated key keeps its last value. */
export function formatJson(entries: KeyValue[]): string {
  // Built by hand so `__proto__` stays an ordinary key and order is exactly as given.
  const byKey = new Map<string, string>();
  for (const { key, value } of entries) byKey.set(key, value);
  if (byKey.size === 0) return "{}\n";
  const lines = [...byKey].map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return `{\n${lines.join(",\n")}\n}\n`;
}

function checkFormatKey(key: string): void {
  checkKey(key, (msg) => new TypeError(`cannot format entry: ${msg}`));
}
