/**
 * A team chain in memory: the accepted blocks of one team, their fold order and the folded state.
 * No I/O: the caller stores what add() accepted and feeds restore() with it on start.
 *
 * A block is accepted when it is valid in the fold of its own ancestors — the chain exactly as its
 * author saw it. That depends only on the block, so every peer accepts the same blocks whatever
 * order they arrive in; the fold over all accepted blocks then skips, the same way everywhere, the
 * ones a concurrent block made invalid (docs/TEAMS.md "Acceptance").
 */
import type { Ed25519Verifier } from "../crypto/sign.ts";
import { MAX_PARENTS } from "./types.ts";
import { shortFingerprint } from "../identity/fingerprint.ts";
import { RecordError } from "../wire/signed_record.ts";
import {
  type Block,
  ed25519Of,
  parseBlock,
  TeamError,
  verifyBlockSignature,
  verifyJoinProof,
} from "./block.ts";
import {
  applyBlock,
  foldBlocks,
  type FoldContext,
  genesisState,
  type Rejection,
  type TeamState,
} from "./state.ts";

/** Blocks waiting for parents; the oldest is dropped beyond this (a peer can send them again). */
export const MAX_HELD_BLOCKS = 1024;
/** Rejections remembered so a block sent again, or its children, are refused at once. */
const MAX_REMEMBERED = 1024;

export interface AddResult {
  /** Newly accepted blocks, in the order they were accepted (parents first). */
  added: Block[];
  rejected: { hash: string; code: string; message: string }[];
  /** Parent hashes we do not have, of blocks held back by this call; sorted. */
  missing: string[];
}

/** Stored blocks passed every check when they were added; invite proofs included. */
const TRUSTED: FoldContext = { inviteSigOk: () => true };

export class TeamChain {
  readonly id: string;
  readonly #genesis: Block;
  readonly #blocks = new Map<string, Block>();
  readonly #height = new Map<string, number>();
  /** Hashes some stored block names as a parent: everything else is a head. */
  readonly #referenced = new Set<string>();
  /** Ed25519 keys of everyone a stored block introduced (a fingerprint pins its keys). */
  readonly #keys = new Map<string, Uint8Array>();
  readonly #held = new Map<string, Block>();
  readonly #rejected = new Map<string, Rejection>();
  /** Always the fold of every stored block. */
  #work: TeamState;
  #snapshot: TeamState | null = null;
  #order: Block[] | null = null;
  #heads: string[] | null = null;
  /** add() calls run one at a time: each one reads and changes the chain across awaits. */
  #tail: Promise<unknown> = Promise.resolve();

  private constructor(genesis: Block) {
    this.id = genesis.hash;
    this.#genesis = genesis;
    this.#insert(genesis);
    this.#work = genesisState(genesis);
  }

  /** A chain holding only `genesis`, after checking it is one, signed by its creator. */
  static async create(genesis: Block, verifier: Ed25519Verifier): Promise<TeamChain> {
    const g = parseBlock(genesis.record.bytes);
    const b = g.body;
    if (b.type !== "genesis") {
      throw new TeamError("not_genesis", `a team starts with a genesis block, not ${b.type}`);
    }
    // The schema already holds a genesis to team "" and no parents.
    if (b.author !== b.member.fingerprint) {
      throw new TeamError("bad_author", "the genesis must be authored by the member it names");
    }
    if (!await verifyBlockSignature(g, ed25519Of(b.member.keys), verifier)) {
      throw new TeamError("bad_signature", "the genesis signature does not verify");
    }
    return new TeamChain(g);
  }

  /**
   * Rebuilds from stored, previously accepted blocks without re-verifying signatures (they were
   * verified when first added). Order does not matter. Blocks whose parents are not among them are
   * held back, as if they had just arrived.
   */
  static restore(genesis: Block, others: Block[]): TeamChain {
    if (genesis.body.type !== "genesis") {
      throw new TeamError(
        "not_genesis",
        `a team starts with a genesis block, not ${genesis.body.type}`,
      );
    }
    const chain = new TeamChain(genesis);
    const pending = new Map<string, Block>();
    for (const b of others) {
      if (b.hash === chain.id) continue;
      if (b.body.team !== chain.id) {
        throw new TeamError(
          "wrong_team",
          `block ${b.hash} belongs to team ${b.body.team || "(none)"}`,
        );
      }
      pending.set(b.hash, b);
    }
    const orphans = new Set<string>();
    // Depth-first, parents before children; iterative, as chains can be long.
    for (const start of pending.values()) {
      const stack = [start];
      const onStack = new Set([start.hash]);
      while (stack.length > 0) {
        const top = stack[stack.length - 1];
        if (chain.#blocks.has(top.hash) || orphans.has(top.hash)) {
          onStack.delete(stack.pop()!.hash);
          continue;
        }
        const next = top.body.parents.find((p) => !chain.#blocks.has(p));
        if (next === undefined) {
          chain.#insert(top);
          continue;
        }
        const parent = pending.get(next);
        if (!parent || orphans.has(next) || onStack.has(next)) {
          orphans.add(top.hash);
          continue;
        }
        stack.push(parent);
        onStack.add(next);
      }
    }
    for (const h of orphans) chain.#hold(pending.get(h)!);
    chain.#work = foldBlocks(genesis, chain.ordered().slice(1), TRUSTED);
    return chain;
  }

  get genesis(): Block {
    return this.#genesis;
  }

  get size(): number {
    return this.#blocks.size;
  }

  has(hash: string): boolean {
    return this.#blocks.has(hash);
  }

  get(hash: string): Block | undefined {
    return this.#blocks.get(hash);
  }

  /** Blocks no other block names as a parent; sorted. */
  heads(): string[] {
    this.#heads ??= [...this.#blocks.keys()].filter((h) => !this.#referenced.has(h)).sort();
    return [...this.#heads];
  }

  /** Parents for a new local block: the current heads. */
  parentsForNew(): string[] {
    // Past MAX_PARENTS concurrent heads, the next local blocks merge the rest.
    return this.heads().slice(0, MAX_PARENTS);
  }

  /** Every stored block in fold order: by height, then by hash. */
  ordered(): Block[] {
    this.#order ??= [...this.#blocks.values()].sort((a, b) => this.#compare(a, b));
    return [...this.#order];
  }

  /** The folded state; a copy, cached until the chain changes. */
  state(): TeamState {
    this.#snapshot ??= structuredClone(this.#work);
    return this.#snapshot;
  }

  /**
   * Blocks that are not `have` nor ancestors of any hash in `have` (hashes we do not know are
   * ignored), in fold order — what a peer with those heads is missing.
   */
  missingFor(have: string[]): Block[] {
    const seen = new Set<string>();
    const stack = have.filter((h) => this.#blocks.has(h));
    while (stack.length > 0) {
      const h = stack.pop()!;
      if (seen.has(h)) continue;
      seen.add(h);
      stack.push(...this.#blocks.get(h)!.body.parents);
    }
    return this.ordered().filter((b) => !seen.has(b.hash));
  }

  /**
   * Adds received or locally made blocks. Each is decoded again from its bytes, then checked:
   * team id, signature by the author's key as known in the chain, parents all known (otherwise
   * held back and its unknown ancestors reported in `missing`), and valid in the fold of its own
   * ancestors. Duplicates are ignored silently. Held-back blocks are added once their parents
   * arrive, in this call or a later one.
   */
  add(blocks: Block[], verifier: Ed25519Verifier): Promise<AddResult> {
    const run = this.#tail.then(() => this.#add(blocks, verifier));
    this.#tail = run.catch(() => {});
    return run;
  }

  async #add(input: Block[], verifier: Ed25519Verifier): Promise<AddResult> {
    const added: Block[] = [];
    const rejected: AddResult["rejected"] = [];
    const reported = new Set<string>();
    const heldNow = new Set<string>();
    const queue: Block[] = [];
    const refuse = (hash: string, r: Rejection, remember: boolean) => {
      if (!reported.has(hash)) rejected.push({ hash, code: r.code, message: r.message });
      reported.add(hash);
      if (!remember) return;
      this.#remember(hash, r);
      // Its held-back children can never be applied now: refuse them too.
      queue.push(...this.#release((b) => b.body.parents.includes(hash)));
    };

    for (const b of input) {
      try {
        queue.push(parseBlock(b.record.bytes));
      } catch (e) {
        refuse(typeof b?.hash === "string" ? b.hash : "", rejectionOf(e), false);
      }
    }
    for (let i = 0; i < queue.length; i++) {
      const blk = queue[i];
      const h = blk.hash;
      if (this.#blocks.has(h)) continue;
      const known = this.#rejected.get(h);
      if (known) {
        refuse(h, known, false);
        continue;
      }
      const bad = this.#precheck(blk);
      if (bad) {
        refuse(h, bad, true);
        continue;
      }
      if (blk.body.parents.some((p) => !this.#blocks.has(p))) {
        if (!this.#held.has(h)) this.#hold(blk);
        heldNow.add(h);
        continue;
      }
      const verified = await this.#verify(blk, verifier);
      if ("code" in verified) {
        // A bad signature says nothing about the hash (it leaves the signature out): a correctly
        // signed copy may still come, so only content-based rejections are remembered.
        refuse(h, verified, verified.code !== "bad_signature");
        continue;
      }
      const invalid = this.#accept(blk, verified.inviteOk);
      if (invalid) {
        refuse(h, invalid, true);
        continue;
      }
      added.push(blk);
      queue.push(...this.#release((b) => b.body.parents.every((p) => this.#blocks.has(p))));
    }
    return { added, rejected, missing: this.#missingParents(heldNow) };
  }

  #precheck(blk: Block): Rejection | null {
    const b = blk.body;
    if (b.team !== this.id) {
      return { code: "wrong_team", message: `the block belongs to team ${b.team || "(none)"}` };
    }
    const bad = b.parents.find((p) => this.#rejected.has(p));
    if (bad !== undefined) {
      return { code: "bad_parent", message: `its parent ${bad.slice(0, 8)} was rejected` };
    }
    return null;
  }

  async #verify(
    blk: Block,
    verifier: Ed25519Verifier,
  ): Promise<Rejection | { inviteOk: boolean }> {
    const b = blk.body;
    const key = this.#keys.get(b.author);
    if (!key) {
      return { code: "not_member", message: `${shortFingerprint(b.author)} is not a member` };
    }
    if (!await verifyBlockSignature(blk, key, verifier)) {
      return { code: "bad_signature", message: "the block signature does not verify" };
    }
    let inviteOk = true;
    if (b.type === "member_added") {
      const p = this.#blocks.get(b.proposal)?.body;
      // Without a stored invite proposal the fold refuses the block before it asks.
      if (p?.type === "propose" && p.proposal.kind === "invite") {
        inviteOk = await verifyJoinProof(
          verifier,
          p.proposal.invite_key,
          b.invite_sig,
          this.id,
          b.proposal,
          b.member.fingerprint,
        );
      }
    }
    return { inviteOk };
  }

  /** Stores `blk` if it is valid in the fold of its ancestors; else says why not. */
  #accept(blk: Block, inviteOk: boolean): Rejection | null {
    const ctx: FoldContext = { inviteSigOk: (h) => h !== blk.hash || inviteOk };
    const parents = new Set(blk.body.parents);
    if (this.heads().every((h) => parents.has(h))) {
      // The usual case: it builds on everything we have, so it sorts last and our state is
      // exactly its view; apply it in place.
      const invalid = applyBlock(this.#work, blk, ctx);
      if (invalid) return invalid;
      this.#insert(blk);
      return null;
    }
    const view = foldBlocks(this.#genesis, this.#ancestorsInOrder(blk), TRUSTED);
    const invalid = applyBlock(view, blk, ctx);
    if (invalid) return invalid;
    this.#insert(blk);
    this.#work = foldBlocks(this.#genesis, this.ordered().slice(1), TRUSTED);
    return null;
  }

  /** The stored ancestors of `blk` in fold order, without the genesis. */
  #ancestorsInOrder(blk: Block): Block[] {
    const seen = new Set<string>();
    const stack = [...blk.body.parents];
    while (stack.length > 0) {
      const h = stack.pop()!;
      if (seen.has(h)) continue;
      seen.add(h);
      stack.push(...this.#blocks.get(h)!.body.parents);
    }
    return this.ordered().filter((b) => seen.has(b.hash) && b.hash !== this.id);
  }

  #insert(blk: Block): void {
    const b = blk.body;
    let height = 0;
    for (const p of b.parents) height = Math.max(height, this.#height.get(p)! + 1);
    this.#blocks.set(blk.hash, blk);
    this.#height.set(blk.hash, height);
    for (const p of b.parents) this.#referenced.add(p);
    if (b.type === "genesis" || b.type === "member_added") {
      this.#keys.set(b.member.fingerprint, ed25519Of(b.member.keys));
    }
    const order = this.#order;
    if (order && this.#compare(order[order.length - 1], blk) < 0) order.push(blk);
    else this.#order = null;
    this.#heads = null;
    this.#snapshot = null;
  }

  #compare(a: Block, b: Block): number {
    const d = this.#height.get(a.hash)! - this.#height.get(b.hash)!;
    if (d !== 0) return d;
    return a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0;
  }

  #hold(blk: Block): void {
    if (this.#held.size >= MAX_HELD_BLOCKS) {
      this.#held.delete(this.#held.keys().next().value!);
    }
    this.#held.set(blk.hash, blk);
  }

  /** Takes the held blocks matching `ready` out of the waiting room. */
  #release(ready: (b: Block) => boolean): Block[] {
    const out = [...this.#held.values()].filter(ready);
    for (const b of out) this.#held.delete(b.hash);
    return out;
  }

  #remember(hash: string, r: Rejection): void {
    if (this.#rejected.size >= MAX_REMEMBERED) {
      this.#rejected.delete(this.#rejected.keys().next().value!);
    }
    this.#rejected.set(hash, r);
  }

  /** Unknown ancestors of the given held blocks: what to ask the peer for. */
  #missingParents(held: Set<string>): string[] {
    const missing = new Set<string>();
    const seen = new Set<string>();
    const stack = [...held].filter((h) => this.#held.has(h));
    while (stack.length > 0) {
      const h = stack.pop()!;
      if (seen.has(h)) continue;
      seen.add(h);
      for (const p of this.#held.get(h)!.body.parents) {
        if (this.#held.has(p)) stack.push(p);
        else if (!this.#blocks.has(p)) missing.add(p);
      }
    }
    return [...missing].sort();
  }
}

function rejectionOf(e: unknown): Rejection {
  if (e instanceof TeamError || e instanceof RecordError) {
    return { code: e.code, message: e.message };
  }
  return { code: "malformed", message: e instanceof Error ? e.message : String(e) };
}
