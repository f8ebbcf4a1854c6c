/**
 * The daemon's secrets: one OpsLog per team, kept in den.db, grown by local `den env` changes
 * and by ops from teammates (SecretsSync). Values are decrypted only to answer the local user;
 * they are never logged and never leave this process in plaintext except over the control socket.
 */
import { fromBase64 } from "../crypto/encoding.ts";
import { DenError, Exit } from "../errors.ts";
import type { Identity } from "../identity/keys.ts";
import type { Logger } from "../log/logger.ts";
import type { MetricsRegistry } from "../metrics/registry.ts";
import type { Store } from "../store/store.ts";
import type { TeamChain } from "../team/chain.ts";
import type { TeamService } from "../team/service.ts";
import { readersOf, type TeamState } from "../team/state.ts";
import { copyIndex, type CopyLookup, foldEnv, type KeyState, liveKeys } from "./fold.ts";
import {
  type Change,
  createOp,
  isEnvName,
  isKeyName,
  type Op,
  openEntries,
  parseOp,
  type ReaderKeys,
  readerKeysFor,
  type Recipient,
  splitChanges,
  verifyOp,
} from "./op.ts";
import { OpsLog } from "./ops_log.ts";

export interface SecretsServiceOptions {
  store: Store;
  identity: Identity;
  fingerprint: string;
  teams: TeamService;
  log: Logger;
  metrics: MetricsRegistry;
  now?: () => number;
}

export interface EnvEntryView {
  key: string;
  readable: boolean;
  version: number;
  author: string;
  author_fingerprint: string;
  updated: string;
  /** Someone who is no longer in the team could read this value: change it. */
  rotate: boolean;
  value?: string;
}

export interface HistoryView {
  key: string;
  version: number;
  action: "set" | "delete";
  author: string;
  author_fingerprint: string;
  at: string;
  current: boolean;
}

/** Ops added to a team's log: ours (source null) or a peer's. */
export type OpsAddedHandler = (team: string, ops: Op[], source: string | null) => void;

export class SecretsService {
  readonly #o: SecretsServiceOptions;
  readonly #now: () => number;
  readonly #logs = new Map<string, OpsLog>();
  readonly #handlers: OpsAddedHandler[] = [];
  #reader: Promise<ReaderKeys> | null = null;
  /** One local write at a time: seq and lamport come from the log's head. */
  #writing: Promise<unknown> = Promise.resolve();

  constructor(opts: SecretsServiceOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    opts.metrics.counter("den_ops_rejected_total", "Secret ops rejected, by reason.");
    opts.metrics.counter("den_ops_added_total", "Secret ops added, by source (local, peer).");
  }

  onAdded(handler: OpsAddedHandler): void {
    this.#handlers.push(handler);
  }

  #readerKeys(): Promise<ReaderKeys> {
    this.#reader ??= readerKeysFor(this.#o.identity, this.#o.fingerprint);
    return this.#reader;
  }

  log(team: string): OpsLog {
    let log = this.#logs.get(team);
    if (!log) this.#logs.set(team, log = new OpsLog(team));
    return log;
  }

  /**
   * Loads every team's ops from den.db, verifying each one again. An op edited into the file is
   * dropped with the rest of its chain (they link to it) and reported; teammates send them again.
   */
  async load(): Promise<void> {
    for (const team of this.#o.store.teams()) {
      const chain = this.#o.teams.chain(team.id);
      if (!chain) continue;
      const rows = this.#o.store.ops(team.id);
      const ops: Op[] = [];
      const bad: {
        env: string;
        author: string;
        seq: number;
        hash: string | null;
        code: string;
        message: string;
      }[] = [];
      for (const row of rows) {
        try {
          const op = parseOp(row.bytes);
          if (
            op.hash !== row.hash || op.body.env !== row.env || op.body.author !== row.author ||
            op.body.seq !== row.seq
          ) throw new DenError("tampered", "the op does not match the row it is stored in");
          ops.push(op);
        } catch (err) {
          bad.push({ ...row, code: codeOf(err), message: (err as Error).message });
        }
      }
      const verdicts = await this.#verifyAll(chain, ops);
      const log = this.log(team.id);
      const cut = new Set<string>();
      for (const b of bad) cut.add(`${b.env}\0${b.author}`);
      ops.forEach((op, i) => {
        const chainKey = `${op.body.env}\0${op.body.author}`;
        if (cut.has(chainKey)) return;
        const verdict = verdicts[i] ?? log.add(op);
        if (verdict !== "added" && verdict !== "duplicate") {
          cut.add(chainKey);
          bad.push({
            ...op.body,
            hash: op.hash,
            code: verdict,
            message: `stored op rejected: ${verdict}`,
          });
        }
      });
      for (const b of bad) {
        this.#o.store.deleteOpsFrom(team.id, b.env, b.author, b.seq);
        this.#reject(
          team.id,
          b.hash,
          "den.db",
          b.code,
          `${b.env}/${b.author.slice(0, 16)}#${b.seq}: ${b.message}`,
        );
      }
    }
  }

  /** Signature and authorship of each op: null when fine, else a rejection code. */
  async #verifyAll(chain: TeamChain, ops: Op[]): Promise<(string | null)[]> {
    const state = chain.state();
    return await Promise.all(ops.map(async (op) => {
      if (op.body.team !== chain.id) return "wrong_team";
      const author = state.members.get(op.body.author) ?? state.former.get(op.body.author);
      if (!author) return "not_member";
      const ok = await verifyOp(op, fromBase64(author.keys.ed25519), this.#o.teams.verifier);
      return ok ? null : "bad_signature";
    }));
  }

  #reject(team: string, hash: string | null, source: string, code: string, message: string) {
    this.#o.metrics.inc("den_ops_rejected_total", { reason: code });
    this.#o.log.warn("secret op rejected", { team, op: hash, from: source, code, message });
    this.#o.store.reportRejected({
      at: this.#now(),
      team,
      what: "op",
      hash,
      source,
      code,
      message,
    });
  }

  /**
   * Ops from a teammate: checked (author a current member, signature, chain link) and the
   * accepted ones stored in one transaction. Returns whether some op needs earlier ones first.
   */
  async receive(team: string, records: Uint8Array[], source: string): Promise<{ gap: boolean }> {
    const chain = this.#o.teams.chain(team);
    if (!chain) return { gap: false };
    const ops: Op[] = [];
    for (const r of records) {
      try {
        ops.push(parseOp(r));
      } catch (err) {
        this.#reject(team, null, source, codeOf(err), (err as Error).message);
      }
    }
    const state = chain.state();
    const verdicts = await this.#verifyAll(chain, ops);
    const log = this.log(team);
    const added: Op[] = [];
    let gap = false;
    ops.forEach((op, i) => {
      let verdict = verdicts[i];
      if (verdict === null && !state.members.has(op.body.author) && !log.get(op.hash)) {
        verdict = "removed_member";
      }
      if (verdict === null) {
        const res = log.add(op);
        if (res === "added") return void added.push(op);
        if (res === "duplicate") return;
        if (res === "gap") return void (gap = true);
        verdict = res;
      }
      this.#reject(team, op.hash, source, verdict, `op ${op.body.env}/${op.body.seq}: ${verdict}`);
    });
    this.#persist(team, added, source);
    return { gap };
  }

  #persist(team: string, ops: Op[], source: string | null): void {
    if (ops.length === 0) return;
    this.#o.store.putOps(
      team,
      ops.map((op) => ({
        env: op.body.env,
        author: op.body.author,
        seq: op.body.seq,
        hash: op.hash,
        bytes: op.record.bytes,
      })),
      this.#now(),
    );
    this.#o.metrics.inc("den_ops_added_total", { source: source ? "peer" : "local" }, ops.length);
    for (const h of this.#handlers) {
      try {
        h(team, ops, source);
      } catch (err) {
        this.#o.log.warn("an ops handler failed", { team, error: String(err) });
      }
    }
  }

  // --- local changes ------------------------------------------------------------------------

  /** Appends our ops for `changes` (split to fit records) and stores them atomically. */
  write(chain: TeamChain, env: string, changes: Change[]): Promise<Op[]> {
    const run = this.#writing.then(() => this.#write(chain, env, changes));
    this.#writing = run.catch(() => {});
    return run;
  }

  async #write(chain: TeamChain, env: string, changes: Change[]): Promise<Op[]> {
    checkEnv(env);
    const state = chain.state();
    if (!state.members.has(this.#o.fingerprint)) {
      throw new DenError("not_member", `this node is not a member of ${state.name}`, {
        exit: Exit.notAuthorized,
      });
    }
    const readers = recipients(state, env);
    const log = this.log(chain.id);
    const ops: Op[] = [];
    const author = { fingerprint: this.#o.fingerprint, signing: this.#o.identity.signing };
    for (const part of splitChanges(changes, readers.length)) {
      const link = log.next(this.#o.fingerprint, env);
      const op = await createOp(author, {
        team: chain.id,
        env,
        ...link,
        ts: this.#now(),
        changes: part,
      }, readers);
      const res = log.add(op);
      if (res !== "added") throw new DenError("op_refused", `could not append the op: ${res}`);
      ops.push(op);
    }
    this.#persist(chain.id, ops, null);
    return ops;
  }

  async set(chain: TeamChain, env: string, pairs: [string, string][]): Promise<number> {
    for (const [k] of pairs) checkKey(k);
    const ops = await this.write(chain, env, pairs.map(([key, value]) => ({ key, value })));
    return ops.length;
  }

  async remove(chain: TeamChain, env: string, keys: string[]): Promise<void> {
    const state = this.#fold(chain.id, env);
    for (const k of keys) {
      checkKey(k);
      if (!state.get(k) || state.get(k)!.current.deleted) throw notSet(k, env);
    }
    await this.write(chain, env, keys.map((key) => ({ key, delete: true as const })));
  }

  #fold(team: string, env: string): Map<string, KeyState> {
    return foldEnv(this.log(team).ops(env), env);
  }

  /** Decrypts the given versions (op hash, entry index) that this node can read. */
  async #open(team: string, versions: { op: string; index: number }[]): Promise<(string | null)[]> {
    const me = await this.#readerKeys();
    return await openVersions(copyIndex(this.log(team).ops()), versions, me);
  }

  async get(chain: TeamChain, env: string, key: string): Promise<string> {
    checkKey(key);
    const ks = this.#fold(chain.id, env).get(key);
    if (!ks || ks.current.deleted) throw notSet(key, env);
    const [value] = await this.#open(chain.id, [ks.current]);
    if (value === null) throw notReader(chain.state().name, env);
    return value;
  }

  async list(chain: TeamChain, env: string, show: boolean): Promise<EnvEntryView[]> {
    const state = chain.state();
    const holders = copyIndex(this.log(chain.id).ops());
    const live = liveKeys(this.#fold(chain.id, env)).sort((a, b) => a.key < b.key ? -1 : 1);
    const gone = new Set(state.former.keys());
    const out: EnvEntryView[] = [];
    for (const ks of live) {
      const readers = readersOfVersion(holders, ks.current);
      const readable = readers.has(this.#o.fingerprint);
      const view: EnvEntryView = {
        key: ks.key,
        readable,
        version: ks.current.version,
        author: nameOf(state, ks.current.author),
        author_fingerprint: ks.current.author,
        updated: new Date(ks.current.ts).toISOString(),
        rotate: [...readers].some((fp) => gone.has(fp)),
      };
      if (show && readable) {
        view.value = (await this.#open(chain.id, [ks.current]))[0] ?? undefined;
      }
      out.push(view);
    }
    return out;
  }

  /** Every readable live value; `skipped` names keys this node cannot read. */
  async values(
    chain: TeamChain,
    env: string,
  ): Promise<{ entries: { key: string; value: string }[]; skipped: string[] }> {
    const live = liveKeys(this.#fold(chain.id, env)).sort((a, b) => a.key < b.key ? -1 : 1);
    const values = await this.#open(chain.id, live.map((k) => k.current));
    const entries: { key: string; value: string }[] = [];
    const skipped: string[] = [];
    live.forEach((k, i) => {
      const v = values[i];
      if (v === null) skipped.push(k.key);
      else entries.push({ key: k.key, value: v });
    });
    return { entries, skipped };
  }

  history(chain: TeamChain, env: string, key?: string): HistoryView[] {
    if (key !== undefined) checkKey(key);
    const state = chain.state();
    const fold = this.#fold(chain.id, env);
    if (key !== undefined && !fold.has(key)) throw notSet(key, env);
    const keys = key !== undefined ? [fold.get(key)!] : [...fold.values()];
    return keys.flatMap((ks) =>
      ks.versions.map((v) => ({
        key: ks.key,
        version: v.version,
        action: v.deleted ? "delete" as const : "set" as const,
        author: nameOf(state, v.author),
        author_fingerprint: v.author,
        at: new Date(v.ts).toISOString(),
        current: v === ks.current,
      }))
    ).sort((a, b) => a.at < b.at ? -1 : a.at > b.at ? 1 : 0);
  }

  /** Sets KEY back to the value it had at VERSION, as a new version. */
  async rollback(chain: TeamChain, env: string, key: string, version: number): Promise<number> {
    checkKey(key);
    const ks = this.#fold(chain.id, env).get(key);
    const target = ks?.versions.find((v) => v.version === version);
    if (!ks || !target) {
      throw new DenError("no_such_version", `${key} has no version ${version} in ${env}`, {
        exit: Exit.usage,
        hint: `den env history ${key} lists its versions`,
      });
    }
    if (target.deleted) {
      await this.write(chain, env, [{ key, delete: true }]);
    } else {
      const [value] = await this.#open(chain.id, [target]);
      if (value === null) throw notReader(chain.state().name, env);
      await this.write(chain, env, [{ key, value }]);
    }
    return this.#fold(chain.id, env).get(key)!.current.version;
  }

  /**
   * Re-encrypts every live value of `env` that this node can read for the env's current readers
   * (after a grant, a join, or a removal). Values we cannot read are left as they are.
   */
  async rewrap(chain: TeamChain, env: string): Promise<number> {
    const log = this.log(chain.id);
    const live = liveKeys(this.#fold(chain.id, env));
    const values = await this.#open(chain.id, live.map((k) => k.current));
    const changes: Change[] = [];
    live.forEach((k, i) => {
      const value = values[i];
      if (value !== null) {
        changes.push({ key: k.key, copyOf: { op: k.current.op, index: k.current.index }, value });
      }
    });
    if (changes.length === 0 || log.size === 0) return 0;
    await this.write(chain, env, changes);
    return changes.length;
  }

  /** Ops stored, over every team. */
  opCount(): number {
    let n = 0;
    for (const log of this.#logs.values()) n += log.size;
    return n;
  }

  /** Envs that have ops in a team. */
  envs(team: string): string[] {
    return [...new Set(this.log(team).ops().map((o) => o.body.env))].sort();
  }

  /** Live versions of `env` that some current reader cannot decrypt. */
  uncovered(chain: TeamChain, env: string): number {
    const holders = copyIndex(this.log(chain.id).ops());
    const readers = readersOf(chain.state(), env).map((m) => m.fingerprint);
    return liveKeys(this.#fold(chain.id, env)).filter((k) => {
      const can = readersOfVersion(holders, k.current);
      return readers.some((r) => !can.has(r));
    }).length;
  }
}

/**
 * Each version's value from the first holder (the op or a copy) wrapped for `me`, or null. Each
 * op's data key is unwrapped once however many of its entries are wanted.
 */
async function openVersions(
  holders: CopyLookup,
  versions: { op: string; index: number }[],
  me: ReaderKeys,
): Promise<(string | null)[]> {
  const byOp = new Map<string, { op: Op; wanted: [number, number][] }>();
  versions.forEach((v, i) => {
    const h = holders(v.op, v.index).find((c) =>
      c.op.body.wraps.some((w) => w.reader === me.fingerprint)
    );
    if (!h) return;
    let group = byOp.get(h.op.hash);
    if (!group) byOp.set(h.op.hash, group = { op: h.op, wanted: [] });
    group.wanted.push([i, h.index]);
  });
  const out: (string | null)[] = versions.map(() => null);
  for (const { op, wanted } of byOp.values()) {
    const values = await openEntries(op, me, wanted.map(([, index]) => index));
    for (const [i, index] of wanted) out[i] = values?.[index] ?? null;
  }
  return out;
}

/** Fingerprints that can decrypt a version: its op's readers and every copy's. */
function readersOfVersion(holders: CopyLookup, v: { op: string; index: number }): Set<string> {
  const out = new Set<string>();
  for (const h of holders(v.op, v.index)) for (const w of h.op.body.wraps) out.add(w.reader);
  return out;
}

function recipients(state: TeamState, env: string): Recipient[] {
  return readersOf(state, env).map((m) => ({
    fingerprint: m.fingerprint,
    x25519: fromBase64(m.keys.x25519),
    mlkem768: fromBase64(m.keys.mlkem768),
  }));
}

function nameOf(state: TeamState, fp: string): string {
  return state.members.get(fp)?.name ?? state.former.get(fp)?.name ?? fp.slice(0, 16);
}

function codeOf(err: unknown): string {
  return (err as { code?: unknown }).code && typeof (err as { code: unknown }).code === "string"
    ? (err as { code: string }).code
    : "malformed";
}

function checkKey(key: string): void {
  if (!isKeyName(key as unknown)) {
    throw new DenError("bad_key", `not a variable name: ${JSON.stringify(key.slice(0, 140))}`, {
      exit: Exit.usage,
      hint: "names are letters, digits and '_', not starting with a digit, at most 128 long",
    });
  }
}

function checkEnv(env: string): void {
  if (!isEnvName(env as unknown)) {
    throw new DenError("bad_env", `not an environment name: ${JSON.stringify(env.slice(0, 40))}`, {
      exit: Exit.usage,
      hint: "use 1-32 characters: letters, digits, '.', '-' and '_'",
    });
  }
}

function notSet(key: string, env: string): DenError {
  return new DenError("not_set", `${key} is not set in ${env}`, {
    hint: "den env list shows the keys that are set",
  });
}

function notReader(team: string, env: string): DenError {
  return new DenError("not_reader", `this node cannot read environment ${env} of ${team}`, {
    exit: Exit.notAuthorized,
    hint: `an admin can give access: den env grant YOUR_NAME --env ${env} --team ${team}`,
  });
}
