/**
 * The ops of one team, every env, in memory: one chain per (env, author), each op linked to the
 * one before by seq and hash and ordered by a Lamport clock (docs/SECRETS.md, "Chains"). It checks
 * links only: signatures, membership and reader sets are the caller's (it knows the keys).
 */
import type { Op } from "./op.ts";

export interface ChainHead {
  author: string;
  env: string;
  seq: number;
  hash: string;
  lamport: number;
}

export type AddResult =
  | "added"
  | "duplicate"
  /** seq is beyond head + 1: fetch the ops in between first */
  | "gap"
  /** another op already holds this seq: the author signed two histories */
  | "fork"
  /** prev is not the hash of the op at seq - 1 (or not null at seq 1) */
  | "bad_link"
  /** lamport is not greater than the previous op's */
  | "bad_lamport"
  | "wrong_team";

/** The fields a new op in a chain must have. */
export interface NextLink {
  seq: number;
  prev: string | null;
  lamport: number;
}

export class OpsLog {
  // env → author → ops by seq (index seq - 1): a chain only ever grows at its end.
  readonly #chains = new Map<string, Map<string, Op[]>>();
  readonly #byHash = new Map<string, Op>();

  constructor(readonly team: string) {}

  /**
   * Checks team, then the link (seq = head.seq + 1 with prev = head.hash; seq 1 with prev null),
   * then lamport > the previous op's, and stores the op. Nothing is stored unless "added".
   */
  add(op: Op): AddResult {
    const b = op.body;
    if (b.team !== this.team) return "wrong_team";
    if (!Number.isSafeInteger(b.seq) || b.seq < 1) return "bad_link"; // parseOp rules this out
    const chain = this.#chains.get(b.env)?.get(b.author) ?? [];
    if (b.seq <= chain.length) return chain[b.seq - 1].hash === op.hash ? "duplicate" : "fork";
    if (b.seq > chain.length + 1) return "gap";
    const before = chain.at(-1);
    if (b.prev !== (before?.hash ?? null)) return "bad_link";
    if (before !== undefined && b.lamport <= before.body.lamport) return "bad_lamport";
    if (chain.length === 0) {
      let authors = this.#chains.get(b.env);
      if (authors === undefined) this.#chains.set(b.env, authors = new Map());
      authors.set(b.author, chain);
    }
    chain.push(op);
    this.#byHash.set(op.hash, op);
    return "added";
  }

  get(hash: string): Op | undefined {
    return this.#byHash.get(hash);
  }

  /** Every chain's last op, sorted by env, then author. */
  heads(): ChainHead[] {
    return this.#sortedChains().map(([, chain]) => headOf(chain.at(-1)!));
  }

  head(author: string, env: string): ChainHead | undefined {
    const last = this.#chains.get(env)?.get(author)?.at(-1);
    return last === undefined ? undefined : headOf(last);
  }

  /** seq, prev and lamport for `author`'s next op in `env`. */
  next(author: string, env: string): NextLink {
    const h = this.head(author, env);
    return { seq: (h?.seq ?? 0) + 1, prev: h?.hash ?? null, lamport: this.maxLamport(env) + 1 };
  }

  /** The chain's ops with a larger seq, ascending. */
  after(author: string, env: string, seq: number): Op[] {
    return (this.#chains.get(env)?.get(author) ?? []).slice(Math.max(0, seq));
  }

  /**
   * The ops a peer with these heads lacks: chain by chain (env, then author), each ascending, so
   * they can be added in this order. A chain the peer does not list is sent whole.
   */
  missingFor(peerHeads: { author: string; env: string; seq: number }[]): Op[] {
    const theirs = new Map<string, Map<string, number>>();
    for (const h of peerHeads) {
      let authors = theirs.get(h.env);
      if (authors === undefined) theirs.set(h.env, authors = new Map());
      authors.set(h.author, Math.max(h.seq, authors.get(h.author) ?? 0));
    }
    return this.#sortedChains().flatMap(([env, chain]) =>
      chain.slice(Math.max(0, theirs.get(env)?.get(chain[0].body.author) ?? 0))
    );
  }

  /** All ops (of one env if given), chain by chain as in missingFor. */
  ops(env?: string): Op[] {
    return this.#sortedChains(env).flatMap(([, chain]) => chain);
  }

  /** The largest lamport in the env, 0 when it has no ops. */
  maxLamport(env: string): number {
    let max = 0;
    for (const chain of this.#chains.get(env)?.values() ?? []) {
      max = Math.max(max, chain.at(-1)!.body.lamport); // lamport grows along a chain
    }
    return max;
  }

  get size(): number {
    return this.#byHash.size;
  }

  #sortedChains(only?: string): [string, Op[]][] {
    const out: [string, Op[]][] = [];
    for (const env of [...this.#chains.keys()].sort(byCodeUnits)) {
      if (only !== undefined && env !== only) continue;
      const authors = this.#chains.get(env)!;
      for (const a of [...authors.keys()].sort(byCodeUnits)) out.push([env, authors.get(a)!]);
    }
    return out;
  }
}

function headOf(op: Op): ChainHead {
  const b = op.body;
  return { author: b.author, env: b.env, seq: b.seq, hash: op.hash, lamport: b.lamport };
}

/** Locale-independent, so every peer sorts the same way. */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
