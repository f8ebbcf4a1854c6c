/**
 * The merged state of one env: a deterministic fold of every set and delete, identical on every
 * peer that holds the same ops, in whatever order they arrived (docs/SECRETS.md, "Fold").
 */
import type { Op } from "./op.ts";
import { byCodeUnits } from "./ops_log.ts";

export interface Version {
  /** 1, 2, 3… per key, in fold order */
  version: number;
  /** hash of the op holding this version */
  op: string;
  /** its entry index in that op */
  index: number;
  author: string;
  ts: number;
  lamport: number;
  deleted: boolean;
}

export interface KeyState {
  key: string;
  versions: Version[];
  /** the last version: the key is live unless it is a delete */
  current: Version;
}

interface Write {
  key: string;
  op: Op;
  index: number;
  deleted: boolean;
}

/**
 * Orders writes by (lamport, author, seq, index), then op hash (only two ops forked at one seq
 * tie that far). With equal lamports the larger author fingerprint comes last, so it wins.
 */
function compareWrites(a: Write, b: Write): number {
  const x = a.op.body, y = b.op.body;
  return x.lamport - y.lamport || byCodeUnits(x.author, y.author) || x.seq - y.seq ||
    a.index - b.index || byCodeUnits(a.op.hash, b.op.hash);
}

/**
 * Every key of `env` with all its versions, keys in code-unit order. `ops` are one team's; other
 * envs' ops are skipped, and an op given twice counts once. Copy entries re-encrypt a version and
 * create none.
 */
export function foldEnv(ops: Op[], env: string): Map<string, KeyState> {
  const writes: Write[] = [];
  const seen = new Set<string>();
  for (const op of ops) {
    if (op.body.env !== env || seen.has(op.hash)) continue;
    seen.add(op.hash);
    op.body.entries.forEach((e, index) => {
      if (e.op !== "copy") writes.push({ key: e.key, op, index, deleted: e.op === "del" });
    });
  }
  writes.sort(compareWrites);
  const versions = new Map<string, Version[]>();
  for (const w of writes) {
    let list = versions.get(w.key);
    if (list === undefined) versions.set(w.key, list = []);
    const b = w.op.body;
    list.push({
      version: list.length + 1,
      op: w.op.hash,
      index: w.index,
      author: b.author,
      ts: b.ts,
      lamport: b.lamport,
      deleted: w.deleted,
    });
  }
  const state = new Map<string, KeyState>();
  for (const key of [...versions.keys()].sort(byCodeUnits)) {
    const list = versions.get(key)!;
    state.set(key, { key, versions: list, current: list[list.length - 1] });
  }
  return state;
}

/** The keys whose current version is not a delete, in key order. */
export function liveKeys(state: Map<string, KeyState>): KeyState[] {
  return [...state.values()].filter((k) => !k.current.deleted);
}

/** The version numbered `version` of `key`, if any. */
export function versionOf(
  state: Map<string, KeyState>,
  key: string,
  version: number,
): Version | undefined {
  return state.get(key)?.versions[version - 1];
}

/** Where the ciphertext of a version can be found (see copiesOf). */
export type CopyLookup = (op: string, index: number) => { op: Op; index: number }[];

/**
 * Indexes every copy entry of `ops` once, so looking up many versions costs one pass instead of
 * one pass per version. The lookup follows copiesOf's rules.
 */
export function copyIndex(ops: Op[]): CopyLookup {
  const byHash = new Map<string, Op>();
  const copies = new Map<string, Write[]>();
  for (const c of ops) {
    if (byHash.has(c.hash)) continue;
    byHash.set(c.hash, c);
    c.body.entries.forEach((e, i) => {
      if (e.op !== "copy") return;
      const id = `${e.of}\0${e.index}`;
      let list = copies.get(id);
      if (!list) copies.set(id, list = []);
      list.push({ key: e.key, op: c, index: i, deleted: false });
    });
  }
  return (op, index) => {
    const original = byHash.get(op);
    const entry = original?.body.entries[index];
    if (original === undefined || entry?.op !== "set") return [];
    const o = original.body;
    const found = (copies.get(`${op}\0${index}`) ?? []).filter((w) =>
      w.op.hash !== op && w.op.body.team === o.team && w.op.body.env === o.env &&
      w.key === entry.key
    );
    const own = (w: Write) => (w.op.body.author === o.author ? 0 : 1);
    found.sort((a, b) => own(a) - own(b) || compareWrites(a, b));
    return [{ op: original, index }, ...found.map((w) => ({ op: w.op, index: w.index }))];
  };
}

/**
 * Where a reader can find the ciphertext of a version (entry `index` of op `op`): the original
 * first, then copy entries naming it — those by the version's own author before others, each
 * group in fold order. Only copies for the same team, env and key count; [] unless `op` is among
 * `ops` and that entry is a set. A copy is as trustworthy as its author (docs/SECRETS.md).
 */
export function copiesOf(ops: Op[], op: string, index: number): { op: Op; index: number }[] {
  return copyIndex(ops)(op, index);
}
