/**
 * The daemon's teams: one TeamChain per team, kept in den.db, changed by local actions (create,
 * propose, vote, leave) and by blocks from teammates (TeamSync). Everything that depends on
 * membership — which peers to keep sessions with, who is refused, which relays to use — is read
 * from here after every change.
 */
import { toBase64 } from "../crypto/encoding.ts";
import { randomBytes } from "../crypto/random.ts";
import { ed25519FromSeed, Ed25519Verifier } from "../crypto/sign.ts";
import { DenError, Exit } from "../errors.ts";
import type { Identity } from "../identity/keys.ts";
import type { Logger } from "../log/logger.ts";
import type { MetricsRegistry } from "../metrics/registry.ts";
import type { Store } from "../store/store.ts";
import { type Block, createBlock, createGenesis, memberInfoOf, parseBlock } from "./block.ts";
import { TeamChain } from "./chain.ts";
import { isAdmin } from "./state.ts";
import type { BlockBody, Policy, ProposalBody, Role } from "./types.ts";
import { isEnvName, isTeamName } from "./types.ts";

export interface TeamServiceOptions {
  store: Store;
  identity: Identity;
  fingerprint: string;
  log: Logger;
  metrics: MetricsRegistry;
  /** This node's reachable addresses (HOST:PORT and relay URLs), for the member record. */
  addresses: () => string[];
  now?: () => number;
}

/** The chain of `team` grew: by our own blocks (source null) or by blocks from peer `source`. */
export type TeamChangeHandler = (team: string, added: Block[], source: string | null) => void;

export class TeamService {
  readonly #o: TeamServiceOptions;
  readonly #now: () => number;
  readonly #verifier = new Ed25519Verifier();
  readonly #chains = new Map<string, TeamChain>();
  readonly #changeHandlers: TeamChangeHandler[] = [];
  #writing: Promise<unknown> = Promise.resolve();

  constructor(opts: TeamServiceOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    opts.metrics.counter("den_team_blocks_rejected_total", "Team blocks rejected, by reason.");
  }

  get verifier(): Ed25519Verifier {
    return this.#verifier;
  }

  get fingerprint(): string {
    return this.#o.fingerprint;
  }

  /**
   * Rebuilds every chain from den.db, checking every signature again: a block edited into the
   * file is dropped and reported, and its genuine version comes back from teammates.
   */
  async load(): Promise<void> {
    for (const team of this.#o.store.teams()) {
      const rows = this.#o.store.blocks(team.id);
      const parsed: Block[] = [];
      for (const row of rows) {
        try {
          const b = parseBlock(row.bytes);
          if (b.hash !== row.hash) throw new DenError("hash_mismatch", "stored under another hash");
          parsed.push(b);
        } catch (err) {
          this.#dropStored(team.id, row.hash, err);
        }
      }
      const genesis = parsed.find((b) => b.hash === team.id);
      if (!genesis) {
        this.#o.log.error(
          "team chain has no valid genesis block (den.db was damaged): the team cannot be " +
            "loaded; ask an admin for a new invite and join again",
          { team: team.name, id: team.id },
        );
        continue;
      }
      let chain: TeamChain;
      try {
        chain = await TeamChain.create(genesis, this.#verifier);
      } catch (err) {
        this.#dropStored(team.id, genesis.hash, err);
        continue;
      }
      const res = await chain.add(parsed.filter((b) => b !== genesis), this.#verifier);
      for (const r of res.rejected) this.#dropStored(team.id, r.hash, new Error(r.message), r.code);
      this.#chains.set(team.id, chain);
    }
  }

  #dropStored(team: string, hash: string, err: unknown, code = "tampered"): void {
    const message = err instanceof Error ? err.message : String(err);
    this.#o.log.warn("stored team block rejected", { team, block: hash, code, error: message });
    this.#o.metrics.inc("den_team_blocks_rejected_total", { reason: code });
    this.#o.store.tx(() => {
      this.#o.store.deleteBlock(team, hash);
      this.#o.store.reportRejected({
        at: this.#now(),
        team,
        what: "block",
        hash,
        source: "den.db",
        code,
        message,
      });
    });
  }

  onChange(handler: TeamChangeHandler): void {
    this.#changeHandlers.push(handler);
  }

  /** Team ids this node is a member of (for the handshake's blinded team tags). */
  teamIds(): string[] {
    return [...this.#chains.values()].filter((c) => this.#isMember(c)).map((c) => c.id).sort();
  }

  chains(): TeamChain[] {
    return [...this.#chains.values()];
  }

  chain(id: string): TeamChain | undefined {
    return this.#chains.get(id);
  }

  #isMember(c: TeamChain, fp = this.#o.fingerprint): boolean {
    return c.state().members.has(fp);
  }

  /** Whether `fp` is a current member of team `id` (as this node sees the chain). */
  isMember(id: string, fp: string): boolean {
    const c = this.#chains.get(id);
    return Boolean(c && this.#isMember(c, fp));
  }

  /** Teams that both this node and `fp` are current members of. */
  sharedWith(fp: string): TeamChain[] {
    return this.chains().filter((c) => this.#isMember(c) && this.#isMember(c, fp));
  }

  /**
   * Why `fp` must be refused: it was removed from (or left) a team of ours and is not a member
   * of any team we are still in with it.
   */
  blocked(fp: string): string | null {
    let reason: string | null = null;
    for (const c of this.#chains.values()) {
      if (!this.#isMember(c)) continue;
      const s = c.state();
      if (s.members.has(fp)) return null;
      const former = s.former.get(fp);
      if (former?.reason === "removed") reason = `${former.name} was removed from team ${s.name}`;
    }
    return reason;
  }

  /** Resolves --team: an exact id, an id prefix (8+ hex), or a unique name. */
  resolve(arg: string | undefined): TeamChain {
    const mine = this.chains();
    if (!arg) {
      const active = mine.filter((c) => this.#isMember(c));
      if (active.length === 1) return active[0];
      throw new DenError(
        active.length === 0 ? "no_team" : "team_required",
        active.length === 0 ? "this node is in no team yet" : "this node is in several teams",
        {
          exit: active.length === 0 ? Exit.notAuthorized : Exit.usage,
          hint: active.length === 0
            ? "create one with `den team create NAME` or join one with `den join CODE`"
            : "pass --team NAME, or run `den link TEAM` in the project directory",
        },
      );
    }
    const byId = this.#chains.get(arg);
    if (byId) return byId;
    const matches = mine.filter((c) =>
      c.state().name === arg || (arg.length >= 8 && /^[0-9a-f]+$/.test(arg) && c.id.startsWith(arg))
    );
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) {
      throw new DenError("team_ambiguous", `several teams are called ${arg}`, {
        exit: Exit.usage,
        hint: `use the team id instead: ${matches.map((c) => c.id.slice(0, 12)).join(", ")}`,
      });
    }
    throw new DenError("no_such_team", `this node is not in a team called ${arg}`, {
      exit: Exit.notAuthorized,
      hint: "den team list shows your teams",
    });
  }

  // --- local actions ------------------------------------------------------------------------

  async create(name: string): Promise<TeamChain> {
    if (!isTeamName(name)) {
      throw new DenError("bad_team_name", `not a team name: ${JSON.stringify(name)}`, {
        exit: Exit.usage,
        hint: "use 1-32 characters: lowercase letters, digits, '-' and '_', starting with a " +
          "letter or digit",
      });
    }
    const genesis = await createGenesis(this.#o.identity, name, this.#o.addresses(), this.#now());
    const chain = await TeamChain.create(genesis, this.#verifier);
    this.#o.store.tx(() => {
      this.#o.store.putTeam(chain.id, name, this.#now());
      this.#o.store.putBlocks(
        chain.id,
        [{ hash: genesis.hash, bytes: genesis.record.bytes }],
        this.#now(),
      );
    });
    this.#chains.set(chain.id, chain);
    this.#o.log.info("team created", { team: name, id: chain.id });
    this.#changed(chain.id, [genesis], null);
    return chain;
  }

  /** Signs and appends a block of ours; a block the chain refuses is an error for the user. */
  /** One local block at a time: each names the heads the one before it left. */
  append(
    chain: TeamChain,
    body: DistributiveOmit<BlockBody, "v" | "team" | "author" | "parents" | "ts">,
  ): Promise<Block> {
    return this.#serial(() => this.#append(chain, body));
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#writing.then(fn);
    this.#writing = run.catch(() => {});
    return run;
  }

  async #append(
    chain: TeamChain,
    body: DistributiveOmit<BlockBody, "v" | "team" | "author" | "parents" | "ts">,
    beforeAdd?: (block: Block) => void,
  ): Promise<Block> {
    this.#requireMember(chain);
    const full = {
      ...body,
      v: 1,
      team: chain.id,
      author: this.#o.fingerprint,
      parents: chain.parentsForNew(),
      ts: this.#now(),
    } as BlockBody;
    const block = await createBlock(this.#o.identity.signing, full);
    beforeAdd?.(block);
    const res = await chain.add([block], this.#verifier);
    if (res.added.length === 0) {
      const r = res.rejected[0];
      throw new DenError(r?.code ?? "rejected", r?.message ?? "the team chain refused the change", {
        exit: r && ["not_admin", "not_member"].includes(r.code) ? Exit.notAuthorized : Exit.error,
      });
    }
    this.#o.store.putBlocks(
      chain.id,
      [{ hash: block.hash, bytes: block.record.bytes }],
      this.#now(),
    );
    this.#changed(chain.id, res.added, null);
    return block;
  }

  #requireMember(chain: TeamChain): void {
    if (!this.#isMember(chain)) {
      throw new DenError("not_member", `this node is no longer a member of ${chain.state().name}`, {
        exit: Exit.notAuthorized,
      });
    }
  }

  requireAdmin(chain: TeamChain): void {
    this.#requireMember(chain);
    if (!isAdmin(chain.state(), this.#o.fingerprint)) {
      throw new DenError("not_admin", `only admins of ${chain.state().name} can do this`, {
        exit: Exit.notAuthorized,
        hint: "ask an admin (den team members shows who)",
      });
    }
  }

  /** Proposes an invite and keeps its one-time key; returns the proposal block. */
  proposeInvite(
    chain: TeamChain,
    role: Role,
    envs: string[],
    expiresInMs: number,
  ): Promise<Block> {
    return this.#serial(() => this.#proposeInvite(chain, role, envs, expiresInMs));
  }

  async #proposeInvite(
    chain: TeamChain,
    role: Role,
    envs: string[],
    expiresInMs: number,
  ): Promise<Block> {
    this.requireAdmin(chain);
    for (const e of envs) {
      if (!isEnvName(e)) {
        throw new DenError("bad_env", `not an environment name: ${JSON.stringify(e)}`, {
          exit: Exit.usage,
          hint: "use 1-32 characters: letters, digits, '.', '-' and '_'",
        });
      }
    }
    const seed = randomBytes(32);
    const inviteKey = await ed25519FromSeed(seed);
    const proposal: ProposalBody = {
      kind: "invite",
      role,
      envs,
      invite_key: toBase64(inviteKey.publicKey),
      expires: this.#now() + expiresInMs,
    };
    // Keep the key before the proposal exists anywhere, so an approval can never outrun it.
    let hash = "";
    try {
      return await this.#append(chain, { type: "propose", proposal }, (block) => {
        hash = block.hash;
        this.#o.store.putInvite(block.hash, chain.id, seed, this.#now());
      });
    } catch (err) {
      if (hash) this.#o.store.deleteInvite(hash);
      throw err;
    }
  }

  propose(chain: TeamChain, proposal: ProposalBody): Promise<Block> {
    this.requireAdmin(chain);
    return this.append(chain, { type: "propose", proposal });
  }

  /** Finds a proposal by id or unique id prefix across teams. */
  findProposal(id: string): { chain: TeamChain; id: string } {
    const found: { chain: TeamChain; id: string }[] = [];
    for (const c of this.#chains.values()) {
      for (const pid of c.state().proposals.keys()) {
        if (pid === id || (id.length >= 6 && pid.startsWith(id))) found.push({ chain: c, id: pid });
      }
    }
    if (found.length === 1) return found[0];
    throw new DenError(
      found.length ? "proposal_ambiguous" : "no_such_proposal",
      found.length ? `several proposals start with ${id}` : `no proposal ${id}`,
      { exit: Exit.usage, hint: "den proposals lists them with their ids" },
    );
  }

  async vote(id: string, approve: boolean): Promise<{ chain: TeamChain; id: string }> {
    const p = this.findProposal(id);
    this.requireAdmin(p.chain);
    await this.append(p.chain, { type: approve ? "approve" : "reject", proposal: p.id });
    return p;
  }

  async leave(chain: TeamChain): Promise<void> {
    await this.append(chain, { type: "member_left" });
    this.#o.store.setTeamState(chain.id, "left");
  }

  /** The seed of an invite this node proposed, while it is unused. */
  inviteSeed(proposal: string): Uint8Array | null {
    return this.#o.store.invite(proposal)?.seed ?? null;
  }

  // --- blocks from peers --------------------------------------------------------------------

  /**
   * Adds blocks received from `source`; stores the accepted ones in one transaction and reports
   * the rejected ones. `chain` may be new (a join in progress): it is kept once it holds us.
   */
  async receive(
    chain: TeamChain,
    bytes: Uint8Array[],
    source: string,
  ): Promise<{ added: Block[]; missing: string[] }> {
    const blocks: Block[] = [];
    for (const b of bytes) {
      try {
        blocks.push(parseBlock(b));
      } catch (err) {
        this.#report(chain.id, null, source, (err as { code?: string }).code ?? "malformed", err);
      }
    }
    const res = await chain.add(blocks, this.#verifier);
    for (const r of res.rejected) this.#report(chain.id, r.hash, source, r.code, r.message);
    if (res.added.length > 0) {
      // A chain new to this node (a join): its genesis came from chainFromGenesis, not from
      // chain.add, so it is not in res.added; without it the chain cannot be loaded again.
      const fresh = !this.#chains.has(chain.id);
      const toStore = fresh ? [chain.genesis, ...res.added] : res.added;
      this.#o.store.tx(() => {
        if (fresh) this.#o.store.putTeam(chain.id, chain.state().name, this.#now());
        this.#o.store.putBlocks(
          chain.id,
          toStore.map((b) => ({ hash: b.hash, bytes: b.record.bytes })),
          this.#now(),
        );
      });
      if (fresh) this.#chains.set(chain.id, chain);
      this.#changed(chain.id, res.added, source);
    }
    return { added: res.added, missing: res.missing };
  }

  #report(team: string, hash: string | null, source: string, code: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.#o.metrics.inc("den_team_blocks_rejected_total", { reason: code });
    this.#o.log.warn("team block rejected", { team, block: hash, from: source, code, message });
    this.#o.store.reportRejected({
      at: this.#now(),
      team,
      what: "block",
      hash,
      source,
      code,
      message,
    });
  }

  #changed(team: string, added: Block[], source: string | null): void {
    const chain = this.#chains.get(team);
    if (chain) {
      const s = chain.state();
      const me = this.#o.fingerprint;
      const former = s.former.get(me);
      if (!s.members.has(me) && former) this.#o.store.setTeamState(team, former.reason);
      for (const b of added) {
        if (b.body.type === "member_added") this.#o.store.deleteInvite(b.body.proposal);
      }
    }
    for (const h of this.#changeHandlers) {
      try {
        h(team, added, source);
      } catch (err) {
        this.#o.log.warn("a team change handler failed", { team, error: String(err) });
      }
    }
  }

  /** A new genesis-only chain for a team we are joining (validated against the team id). */
  async chainFromGenesis(team: string, bytes: Uint8Array): Promise<TeamChain | null> {
    try {
      const genesis = parseBlock(bytes);
      if (genesis.hash !== team) return null;
      return await TeamChain.create(genesis, this.#verifier);
    } catch {
      return null;
    }
  }

  memberInfo() {
    return memberInfoOf(this.#o.identity, this.#o.addresses());
  }
}

/** Omit over each member of a union, so discriminants survive. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export function describePolicy(p: Policy): string {
  return p.type === "majority" ? "majority of admins" : `${p.n} admin approval(s)`;
}
