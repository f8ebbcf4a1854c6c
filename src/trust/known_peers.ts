/**
 * known_peers.toml: the trust-on-first-use store. One `[[peers]]` entry per fingerprint, with
 * the name it presented and when it was first and last seen; a name belongs to at most one
 * fingerprint. den writes the file (atomically, mode 0600) and reads it strictly: anything
 * that is not exactly that format is `known_peers_corrupt`, exit 5, naming the file and line.
 * Format and rules: docs/TRUST.md.
 */
import { dirname } from "node:path";
import { parse, TomlError } from "smol-toml";
import { describe, isTable, quote } from "../config/describe.ts";
import { lineLocator, type Locate } from "../config/locate.ts";
import { normalizeFingerprint, ValueError } from "../config/validators.ts";
import { utf8 } from "../crypto/encoding.ts";
import { DenError, Exit } from "../errors.ts";
import { readBounded, writeFileAtomic } from "../util/fsio.ts";

export interface KnownPeer {
  /** 52 lowercase base32 characters. */
  fingerprint: string;
  name: string;
  /** RFC 3339 UTC, e.g. "2025-01-02T03:04:05Z". */
  firstSeen: string;
  lastSeen: string;
}

/** The file is refused unread above this (4096 entries of the longest form fit in it). */
export const MAX_KNOWN_PEERS_BYTES = 1024 * 1024;
/** More peers than a small team ever meets; bounds the file and memory. */
export const MAX_KNOWN_PEERS = 4096;
const MAX_TOML_DEPTH = 8;
/** More problems than this help nobody; the rest are counted. */
const MAX_LISTED = 20;

const ENTRY_KEYS: readonly string[] = Object.freeze([
  "fingerprint",
  "name",
  "first_seen",
  "last_seen",
]);
/** The config's peer-name rule (docs/CONFIG.md), so `den trust reset NAME` can name any entry. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit";
/** RFC 3339 in UTC with an upper-case T and Z; fractions of a second allowed on read. */
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const TIME_RULE = 'a quoted RFC 3339 UTC time such as "2025-01-02T03:04:05Z"';

const HEADER = [
  "# den known peers: identities trusted on first use (TOFU). See docs/TRUST.md.",
  "# Written by den; comments are not kept. `den trust reset NAME` forgets a peer.",
];

/** Why `s` is not a usable name, or null. */
function nameProblem(s: string): string | null {
  return NAME.test(s) ? null : `${quote(s)} is not a peer name (${NAME_RULE})`;
}

/** Why `s` is not a canonical fingerprint, or null. */
function fingerprintProblem(s: string): string | null {
  let canonical: string;
  try {
    canonical = normalizeFingerprint(s);
  } catch (e) {
    if (e instanceof ValueError) return `${quote(s)} is not a fingerprint (${e.message})`;
    throw e;
  }
  return canonical === s
    ? null
    : `${quote(s)} is not written canonically (52 lowercase characters, no separators: ` +
      `${quote(canonical)})`;
}

/** Whether `s` is an RFC 3339 UTC time naming a real instant (no Feb 30, no hour 24). */
function isTime(s: string): boolean {
  if (!TIME.test(s)) return false;
  const d = new Date(`${s.slice(0, 19)}Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 19) === s.slice(0, 19);
}

/** `now` to the second, as the file stores it. */
function formatTime(now: Date): string {
  const t = now.getTime();
  const s = Number.isNaN(t) ? "" : new Date(t - (((t % 1000) + 1000) % 1000)).toISOString();
  const out = s.replace(/\.000Z$/, "Z");
  if (!isTime(out)) throw new RangeError(`known peers: ${String(now)} is not a usable time`);
  return out;
}

type Issue = { line?: number; text: string };

function corrupt(path: string, issues: Issue[]): DenError {
  const lines = issues.slice(0, MAX_LISTED).map((i) =>
    `${path}${i.line === undefined ? "" : `:${i.line}`}: ${i.text}`
  );
  if (issues.length > MAX_LISTED) lines.push(`… and ${issues.length - MAX_LISTED} more`);
  return new DenError("known_peers_corrupt", lines.join("\n"), {
    exit: Exit.verification,
    hint: `fix or remove the [[peers]] entry at that line of ${path}, or restore the file from ` +
      "a backup. A removed peer is trusted again on its next first contact: confirm it with " +
      "its owner using `den peers verify NAME`",
  });
}

/** Validates the parsed document, collecting every problem, and returns its entries. */
function entriesOf(path: string, doc: Record<string, unknown>, locate: Locate): KnownPeer[] {
  const issues: Issue[] = [];
  const at = (segs: (string | number)[], text: string) => {
    const keys = segs.map(String);
    let line: number | undefined;
    for (let n = keys.length; n > 0 && line === undefined; n--) line = locate(keys.slice(0, n));
    issues.push(line === undefined ? { text } : { line, text });
  };
  for (const k of Object.keys(doc)) {
    if (k !== "peers") at([k], `unknown key ${quote(k)}: the file holds only [[peers]] entries`);
  }
  const raw = Object.hasOwn(doc, "peers") ? doc.peers : [];
  if (!Array.isArray(raw)) {
    at(["peers"], `peers: found ${describe(raw)}, expected [[peers]] entries`);
    throw corrupt(path, issues);
  }
  if (raw.length > MAX_KNOWN_PEERS) {
    at(["peers"], `${raw.length} [[peers]] entries, more than ${MAX_KNOWN_PEERS}`);
    throw corrupt(path, issues);
  }
  const out: KnownPeer[] = [];
  /** File index of the entry with each fingerprint / name. */
  const byFp = new Map<string, number>();
  const byName = new Map<string, { index: number; fingerprint: string }>();
  const where = (i: number) => {
    const line = locate(["peers", String(i)]);
    return `peers.${i}${line === undefined ? "" : ` on line ${line}`}`;
  };
  raw.forEach((entry, i) => {
    const p = ["peers", i];
    if (!isTable(entry)) {
      at(p, `peers.${i}: found ${describe(entry)}, expected a [[peers]] table`);
      return;
    }
    let ok = true;
    const bad = (key: string, text: string) => {
      at([...p, key], `peers.${i}.${key}: ${text}`);
      ok = false;
    };
    for (const k of Object.keys(entry)) {
      if (!ENTRY_KEYS.includes(k)) {
        bad(k, `unknown key ${quote(k)} (allowed: ${ENTRY_KEYS.join(", ")})`);
      }
    }
    const field = (key: string, check: (s: string) => string | null, rule: string): string => {
      if (!Object.hasOwn(entry, key)) {
        bad(key, `missing; expected ${rule}`);
        return "";
      }
      const v = entry[key];
      if (typeof v !== "string") {
        bad(key, `found ${describe(v)}, expected ${rule}`);
        return "";
      }
      const problem = check(v);
      if (problem !== null) bad(key, problem);
      return v;
    };
    const timeCheck = (s: string) => (isTime(s) ? null : `${quote(s)} is not ${TIME_RULE}`);
    const peer: KnownPeer = {
      fingerprint: field("fingerprint", fingerprintProblem, "a fingerprint (52 base32 characters)"),
      name: field("name", nameProblem, `a peer name (${NAME_RULE})`),
      firstSeen: field("first_seen", timeCheck, TIME_RULE),
      lastSeen: field("last_seen", timeCheck, TIME_RULE),
    };
    if (!ok) return;
    const sameFp = byFp.get(peer.fingerprint);
    if (sameFp !== undefined) {
      bad("fingerprint", `${quote(peer.fingerprint)} is already listed by ${where(sameFp)}`);
      return;
    }
    const sameName = byName.get(peer.name);
    if (sameName !== undefined) {
      bad(
        "name",
        `${quote(peer.name)} is already listed by ${where(sameName.index)} with fingerprint ` +
          `${sameName.fingerprint}; a name has one fingerprint`,
      );
      return;
    }
    byFp.set(peer.fingerprint, i);
    byName.set(peer.name, { index: i, fingerprint: peer.fingerprint });
    out.push(peer);
  });
  if (issues.length > 0) throw corrupt(path, issues);
  return out;
}

export class KnownPeers {
  readonly path: string;
  /** By fingerprint, in file order (new peers last). */
  #byFp = new Map<string, KnownPeer>();
  /** Name → fingerprint. */
  #byName = new Map<string, string>();

  private constructor(path: string, peers: KnownPeer[]) {
    this.path = path;
    for (const p of peers) {
      this.#byFp.set(p.fingerprint, { ...p });
      this.#byName.set(p.name, p.fingerprint);
    }
  }

  /** An empty store that `save` writes to `path`. */
  static empty(path: string): KnownPeers {
    return new KnownPeers(path, []);
  }

  /**
   * Reads and validates `path`; a missing file is an empty store. Anything malformed is
   * `known_peers_corrupt` (exit 5) naming the file and line: the store is not guessed at.
   */
  static async load(path: string): Promise<KnownPeers> {
    let read;
    try {
      read = await readBounded(path, MAX_KNOWN_PEERS_BYTES);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return KnownPeers.empty(path);
      if (err instanceof Deno.errors.PermissionDenied) {
        throw new DenError("known_peers_unreadable", `cannot read ${path}: permission denied`, {
          hint: "run den as the user that owns the file, or fix its permissions (chmod 600)",
        });
      }
      throw err;
    }
    if (read.notAFile) {
      throw new DenError("known_peers_unreadable", `${path} is not a regular file`, {
        hint: "move it out of the way; den recreates known_peers.toml as peers connect",
      });
    }
    if (read.tooLarge) {
      throw corrupt(path, [{ text: `larger than ${MAX_KNOWN_PEERS_BYTES} bytes; refused unread` }]);
    }
    let source: string;
    try {
      source = new TextDecoder("utf-8", { fatal: true }).decode(read.bytes);
    } catch {
      throw corrupt(path, [{ text: "not UTF-8 text" }]);
    }
    let doc: unknown;
    try {
      doc = parse(source, { integersAsBigInt: true, maxDepth: MAX_TOML_DEPTH });
    } catch (err) {
      if (!(err instanceof TomlError)) throw err;
      const reason = err.message.replace(/^Invalid TOML document:\s*/, "").split("\n")[0].trim();
      throw corrupt(path, [{ line: err.line, text: `invalid TOML (${reason})` }]);
    }
    const root = isTable(doc) ? doc : {};
    return new KnownPeers(path, entriesOf(path, root, lineLocator(source)));
  }

  byFingerprint(fp: string): KnownPeer | undefined {
    const p = this.#byFp.get(fp);
    return p && { ...p };
  }

  byName(name: string): KnownPeer | undefined {
    const fp = this.#byName.get(name);
    return fp === undefined ? undefined : this.byFingerprint(fp);
  }

  /**
   * Records that `name` presented `fingerprint` at `now`: a new entry (first_seen = last_seen =
   * now), or last_seen updated. A known fingerprint under a new name is renamed (names are
   * labels; the key is what was trusted). A name already bound to another fingerprint throws
   * `identity_changed` (exit 5): the old binding must be removed with `forget` first
   * (`den trust reset NAME`), never replaced silently.
   */
  remember(name: string, fingerprint: string, now: Date): void {
    const problem = nameProblem(name);
    if (problem !== null) {
      throw new DenError("bad_peer_name", `cannot remember peer: ${problem}`, {
        hint: "peer names follow the rule of [node] name in config.toml (docs/CONFIG.md)",
      });
    }
    const fpProblem = fingerprintProblem(fingerprint);
    if (fpProblem !== null) {
      throw new DenError("bad_fingerprint", `cannot remember ${name}: ${fpProblem}`, {
        hint: "pass the fingerprint computed from the peer's keys (src/identity/fingerprint.ts)",
      });
    }
    const stamp = formatTime(now);
    const bound = this.#byName.get(name);
    if (bound !== undefined && bound !== fingerprint) {
      throw new DenError(
        "identity_changed",
        `${name} presented ${fingerprint}, but ${name} is known as ${bound} in ${this.path}`,
        {
          exit: Exit.verification,
          hint: `if ${name}'s owner confirms the new fingerprint, run den trust reset ${name} ` +
            "first; otherwise someone may be impersonating " + name,
        },
      );
    }
    const existing = this.#byFp.get(fingerprint);
    if (existing !== undefined) {
      if (existing.name !== name) {
        this.#byName.delete(existing.name);
        this.#byName.set(name, fingerprint);
        existing.name = name;
      }
      existing.lastSeen = stamp;
      return;
    }
    if (this.#byFp.size >= MAX_KNOWN_PEERS) {
      throw new DenError(
        "known_peers_full",
        `${this.path} already holds ${MAX_KNOWN_PEERS} peers; ${name} was not remembered`,
        { hint: "forget peers you no longer use with den trust reset NAME" },
      );
    }
    this.#byFp.set(fingerprint, { fingerprint, name, firstSeen: stamp, lastSeen: stamp });
    this.#byName.set(name, fingerprint);
  }

  /** Removes the entry for `name` and returns it; undefined when the name is not known. */
  forget(name: string): KnownPeer | undefined {
    const fp = this.#byName.get(name);
    if (fp === undefined) return undefined;
    const peer = this.#byFp.get(fp)!;
    this.#byName.delete(name);
    this.#byFp.delete(fp);
    return peer;
  }

  /** Every entry, in file order (new peers last); copies. */
  list(): KnownPeer[] {
    return [...this.#byFp.values()].map((p) => ({ ...p }));
  }

  /** The file text `save` writes. */
  render(): string {
    const lines = [...HEADER];
    for (const p of this.#byFp.values()) {
      lines.push(
        "",
        "[[peers]]",
        `fingerprint = ${JSON.stringify(p.fingerprint)}`,
        `name = ${JSON.stringify(p.name)}`,
        `first_seen = ${JSON.stringify(p.firstSeen)}`,
        `last_seen = ${JSON.stringify(p.lastSeen)}`,
      );
    }
    return lines.join("\n") + "\n";
  }

  /** Writes the store atomically (temp file, fsync, rename), mode 0600. */
  async save(): Promise<void> {
    const bytes = utf8(this.render());
    if (bytes.length > MAX_KNOWN_PEERS_BYTES) {
      // Unreachable with the entry cap and field rules; a file den could not read back is worse
      // than an error.
      throw new DenError("known_peers_full", `${this.path} would exceed its size limit`, {
        hint: "forget peers you no longer use with den trust reset NAME",
      });
    }
    await Deno.mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path, bytes, 0o600);
  }
}
