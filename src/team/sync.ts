/**
 * Team-chain sync and joins over peer sessions (docs/SYNC.md). Pull-based: heads are announced
 * on connect and after a change; a peer that lacks blocks asks with its own heads and gets
 * exactly what it is missing, parents first. Our own new blocks are pushed at once. Only peers
 * that are members of the team (as this node's chain says) take part; the one exception is an
 * inviter answering the node that proves its invite.
 */
import { fromBase64, toBase64 } from "../crypto/encoding.ts";
import { ed25519FromSeed, ed25519Sign } from "../crypto/sign.ts";
import { DenError, Exit } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import type { PeerBus } from "../peer/bus.ts";
import type { PeerRef } from "../peer/manager.ts";
import { raceTimeout, TIMED_OUT } from "../util/timeout.ts";
import type { SyncInbox } from "../peer/sync_inbox.ts";
import { encodeSync, packSync, type SyncMessage, SyncType } from "../wire/sync.ts";
import type { Block } from "./block.ts";
import type { TeamChain } from "./chain.ts";
import type { InviteCode } from "./invite_code.ts";
import type { TeamService } from "./service.ts";
import { joinProofMessage, type MemberInfo } from "./types.ts";

const HEX64 = /^[0-9a-f]{64}$/;
const MAX_HEADS = 256;

interface PendingJoin {
  code: InviteCode;
  chain: TeamChain | null;
  requested: boolean;
  done: PromiseWithResolvers<TeamChain>;
}

export interface TeamSyncOptions {
  /** Shared with the secrets sync, so messages are handled in arrival order. */
  inbox: SyncInbox;
  teams: TeamService;
  bus: PeerBus;
  log: Logger;
  now?: () => number;
}

export class TeamSync {
  readonly #o: TeamSyncOptions;
  readonly #teams: TeamService;
  readonly #bus: PeerBus;
  readonly #now: () => number;
  readonly #joins = new Map<string, PendingJoin>();

  constructor(opts: TeamSyncOptions) {
    this.#o = opts;
    this.#teams = opts.teams;
    this.#bus = opts.bus;
    this.#now = opts.now ?? Date.now;
    const on = (type: number, fn: (from: PeerRef, m: SyncMessage) => unknown) =>
      opts.inbox.on(type, "team", fn);
    on(SyncType.teamHeads, (from, m) => this.#onHeads(from, m.header, false));
    on(SyncType.teamWant, (from, m) => this.#onHeads(from, m.header, true));
    on(SyncType.teamBlocks, (from, m) => this.#onBlocks(from, m.header, m.records));
    on(SyncType.joinRequest, (from, m) => this.#onJoinRequest(from, m.header));
    on(SyncType.joinResult, (from, m) => this.#onJoinResult(from, m.header));
    this.#bus.onConnected((peer) => this.#onConnected(peer));
    this.#teams.onChange((team, added, source) => this.#onChange(team, added, source));
  }

  #drop(reason: string): void {
    this.#o.inbox.drop(reason);
  }

  #onConnected(peer: PeerRef): void {
    for (const chain of this.#teams.chains()) {
      if (this.#serves(chain, peer.fingerprint)) {
        this.#sendHeads(peer.fingerprint, chain, SyncType.teamHeads);
      }
    }
    for (const join of this.#joins.values()) {
      if (join.code.inviter.fingerprint === peer.fingerprint) {
        this.#sendJoinRequest(join).catch((err) =>
          join.done.reject(err instanceof Error ? err : new Error(String(err)))
        );
      }
    }
  }

  #sendHeads(fp: string, chain: TeamChain, type: number): void {
    this.#bus.send(fp, type, encodeSync({ team: chain.id, heads: chain.heads() }));
  }

  #members(chain: TeamChain, except: string | null): PeerRef[] {
    return this.#bus.connectedPeers().filter((p) =>
      p.fingerprint !== except && this.#teams.isMember(chain.id, p.fingerprint)
    );
  }

  /** Our blocks go out at once; blocks we got from a peer are announced to the others. */
  #onChange(team: string, added: Block[], source: string | null): void {
    const chain = this.#teams.chain(team);
    const me = this.#teams.fingerprint;
    // Our own leave block still goes out: it is how the others learn that we left.
    const leaving = source === null &&
      added.some((b) => b.body.type === "member_left" && b.body.author === me);
    if (!chain || (!leaving && !this.#teams.isMember(team, me))) return;
    for (const peer of this.#members(chain, source)) {
      if (source === null) {
        this.#sendBlocks(peer.fingerprint, chain, added);
      } else this.#sendHeads(peer.fingerprint, chain, SyncType.teamHeads);
    }
    // A member who just joined gets our heads even if its session is older than its membership.
    for (const b of added) {
      if (b.body.type === "member_added" && b.body.member.fingerprint !== source) {
        const fp = b.body.member.fingerprint;
        if (this.#bus.connectedPeers().some((p) => p.fingerprint === fp)) {
          this.#sendHeads(fp, chain, SyncType.teamHeads);
        }
      }
    }
  }

  #sendBlocks(fp: string, chain: TeamChain, blocks: Block[]): void {
    for (const msg of packSync({ team: chain.id }, blocks.map((b) => b.record.bytes))) {
      this.#bus.send(fp, SyncType.teamBlocks, msg);
    }
  }

  /** Heads from a member: send what it lacks when it asks; ask when it has what we lack. */
  #onHeads(from: PeerRef, header: Record<string, unknown>, want: boolean): void {
    const team = header.team;
    const heads = header.heads;
    if (
      typeof team !== "string" || !HEX64.test(team) || !Array.isArray(heads) ||
      heads.length > MAX_HEADS || !heads.every((h) => typeof h === "string" && HEX64.test(h))
    ) return this.#drop("malformed");
    const chain = this.#teams.chain(team);
    if (!chain) return this.#drop("not_member");
    if (!this.#serves(chain, from.fingerprint)) {
      // Not a member as far as our chain knows, but it proved the team in the handshake: our
      // chain may have lost blocks (den.db edited). Ask for them; never answer such a peer.
      if (want || !this.#mayLearnFrom(chain, from)) return this.#drop("not_member");
    }
    if (want) {
      this.#sendBlocks(from.fingerprint, chain, chain.missingFor(heads as string[]));
    } else if ((heads as string[]).some((h) => !chain.has(h))) {
      this.#sendHeads(from.fingerprint, chain, SyncType.teamWant);
    }
  }

  /**
   * Whether `fp` gets this chain from us: we share the team, or we left it and `fp` is still in
   * it (so it can still fetch our member_left block).
   */
  #serves(chain: TeamChain, fp: string): boolean {
    const me = this.#teams.fingerprint;
    if (!this.#teams.isMember(chain.id, fp)) return false;
    return this.#teams.isMember(chain.id, me) || chain.state().former.get(me)?.reason === "left";
  }

  /**
   * Whom we take heads and blocks from: a member, or a peer whose handshake proved it is in the
   * team while our chain does not list it. Every block is verified on its own (signature, author
   * as the chain knows it), so learning from that peer is safe.
   */
  #mayLearnFrom(chain: TeamChain, from: PeerRef): boolean {
    return this.#shares(chain, from.fingerprint) ||
      (this.#teams.isMember(chain.id, this.#teams.fingerprint) &&
        from.sharedTeams.includes(chain.id));
  }

  #shares(chain: TeamChain, fp: string): boolean {
    return this.#teams.isMember(chain.id, this.#teams.fingerprint) &&
      this.#teams.isMember(chain.id, fp);
  }

  async #onBlocks(
    from: PeerRef,
    header: Record<string, unknown>,
    records: Uint8Array[],
  ): Promise<void> {
    const team = header.team;
    if (typeof team !== "string" || !HEX64.test(team)) return this.#drop("malformed");
    const join = this.#joins.get(team);
    let chain = this.#teams.chain(team) ?? join?.chain ?? null;
    const fromInviter = join?.code.inviter.fingerprint === from.fingerprint;
    if (!fromInviter && (!chain || !this.#mayLearnFrom(chain, from))) {
      return this.#drop("not_member");
    }
    if (!chain && join && records.length > 0) {
      chain = await this.#teams.chainFromGenesis(team, records[0]);
      if (!chain) return this.#drop("bad_genesis");
      join.chain = chain;
      records = records.slice(1);
    }
    if (!chain) return;
    const res = await this.#teams.receive(chain, records, from.fingerprint);
    if (res.missing.length > 0) this.#sendHeads(from.fingerprint, chain, SyncType.teamWant);
    if (join && chain.state().members.has(this.#teams.fingerprint)) {
      this.#joins.delete(team);
      join.done.resolve(chain);
    }
  }

  // --- joining ------------------------------------------------------------------------------

  /**
   * Joins with a decoded invite: `reach` makes the inviter a peer (address, relays); the
   * request goes out as soon as its session is up. Resolves once the chain lists this node.
   */
  async join(code: InviteCode, reach: () => void, timeoutMs: number): Promise<TeamChain> {
    if (this.#teams.isMember(code.team, this.#teams.fingerprint)) {
      throw new DenError("already_member", `this node is already a member of ${code.teamName}`, {
        exit: Exit.usage,
      });
    }
    if (this.#joins.has(code.team)) {
      throw new DenError("join_in_progress", `already joining ${code.teamName}`, {
        hint: "wait for the other den join to finish",
      });
    }
    const join: PendingJoin = {
      code,
      chain: null,
      requested: false,
      done: Promise.withResolvers(),
    };
    this.#joins.set(code.team, join);
    try {
      reach();
      if (this.#bus.connectedPeers().some((p) => p.fingerprint === code.inviter.fingerprint)) {
        await this.#sendJoinRequest(join);
      }
      const out = await raceTimeout(join.done.promise, timeoutMs);
      if (out === TIMED_OUT) {
        throw new DenError(
          "join_timeout",
          `could not complete the join with ${code.inviter.name} within ${
            Math.round(timeoutMs / 1000)
          } s`,
          {
            hint:
              `the inviter's daemon must be running and reachable at ${
                code.addresses.join(", ") || "(no address)"
              }${code.relays.length ? ` or through ${code.relays.join(", ")}` : ""}; ` +
              "den peers shows what was tried",
          },
        );
      }
      return out;
    } finally {
      this.#joins.delete(code.team);
    }
  }

  async #sendJoinRequest(join: PendingJoin): Promise<void> {
    if (join.requested) return;
    join.requested = true;
    const key = await ed25519FromSeed(join.code.seed);
    const member = this.#teams.memberInfo();
    const sig = await ed25519Sign(
      key.privateKey,
      joinProofMessage(join.code.team, join.code.proposal, member.fingerprint),
    );
    this.#bus.send(
      join.code.inviter.fingerprint,
      SyncType.joinRequest,
      encodeSync({
        team: join.code.team,
        proposal: join.code.proposal,
        member,
        invite_sig: toBase64(sig),
      }),
    );
  }

  #onJoinResult(from: PeerRef, header: Record<string, unknown>): void {
    const join = typeof header.team === "string" ? this.#joins.get(header.team) : undefined;
    if (!join || join.code.inviter.fingerprint !== from.fingerprint) {
      return this.#drop("unexpected");
    }
    if (header.ok === true) return; // the chain follows
    const code = typeof header.code === "string" ? header.code.slice(0, 64) : "refused";
    const message = typeof header.message === "string" ? header.message.slice(0, 300) : code;
    join.done.reject(
      new DenError(code, `${join.code.inviter.name} refused the join: ${message}`, {
        exit: code === "bad_invite_sig" ? Exit.verification : Exit.notAuthorized,
        hint: JOIN_HINTS[code] ?? "ask a team admin for a new invite",
      }),
    );
  }

  /** The inviter's side: check the proposal, append member_added, send the chain. */
  async #onJoinRequest(from: PeerRef, header: Record<string, unknown>): Promise<void> {
    const team = typeof header.team === "string" ? header.team : "";
    const reply = (ok: boolean, code = "ok", message = ""): void => {
      const payload = encodeSync({ team, ok, code, message });
      this.#bus.send(from.fingerprint, SyncType.joinResult, payload);
    };
    const chain = this.#teams.chain(team);
    if (!chain || !this.#teams.isMember(team, this.#teams.fingerprint)) {
      return reply(false, "unknown_team", "this node is not a member of that team");
    }
    const state = chain.state();
    const proposal = typeof header.proposal === "string"
      ? state.proposals.get(header.proposal)
      : undefined;
    const member = header.member as MemberInfo | undefined;
    if (!proposal || proposal.body.kind !== "invite") {
      return reply(false, "unknown_invite", "the inviter has no such invite");
    }
    if (!member || typeof member !== "object" || member.fingerprint !== from.fingerprint) {
      return reply(false, "bad_request", "the member record does not match this session");
    }
    if (state.members.has(from.fingerprint)) {
      reply(true);
      return this.#sendBlocks(from.fingerprint, chain, chain.ordered());
    }
    if (proposal.state === "used") {
      return reply(false, "invite_used", "the invite was already used");
    }
    if (proposal.state === "pending") {
      return reply(false, "not_approved", "the invite has not been approved yet");
    }
    if (proposal.state === "rejected") {
      return reply(false, "invite_rejected", "the invite was rejected");
    }
    if (proposal.body.expires <= this.#now()) {
      return reply(false, "invite_expired", "the invite has expired");
    }
    try {
      fromBase64(String(header.invite_sig));
      await this.#teams.append(chain, {
        type: "member_added",
        proposal: proposal.id,
        member,
        invite_sig: String(header.invite_sig),
      });
    } catch (err) {
      const code = err instanceof DenError ? err.code : "bad_request";
      this.#o.log.warn("join refused", { team: state.name, peer: from.name, code });
      return reply(false, code, err instanceof Error ? err.message : String(err));
    }
    this.#o.log.info("member joined", { team: state.name, member: member.name });
    reply(true);
    this.#sendBlocks(from.fingerprint, chain, chain.ordered());
  }
}

const JOIN_HINTS: Record<string, string> = {
  invite_used: "each code works once: ask a team admin for a new invite",
  invite_expired: "ask a team admin for a new invite (den invite --expires sets how long)",
  not_approved: "the invite still needs approvals: the admins can see it with den proposals",
  invite_rejected: "the admins rejected this invite",
  bad_invite_sig: "the code's secret does not match the invite: copy the whole code",
};
