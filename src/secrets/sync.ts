/**
 * Ops sync over peer sessions (docs/SYNC.md): heads on connect and after a change, a request
 * with our heads when a member has ops we lack, exactly the missing ops in chain order in
 * answer, and our heads back as the acknowledgement. New local ops are pushed to every connected
 * member at once. Only members of the team (per this node's chain) take part.
 */
import type { Logger } from "../log/logger.ts";
import type { PeerBus } from "../peer/bus.ts";
import type { PeerRef } from "../peer/manager.ts";
import type { TeamService } from "../team/service.ts";
import type { SyncInbox } from "../peer/sync_inbox.ts";
import { encodeSync, packSync, SyncType } from "../wire/sync.ts";
import type { Op } from "./op.ts";
import type { SecretsService } from "./service.ts";

const HEX64 = /^[0-9a-f]{64}$/;
const MAX_HEADS = 4096;
/** Announcements after received ops are coalesced over this long. */
const ANNOUNCE_DELAY_MS = 50;
/**
 * Ops that came straight from their author were also pushed by it to every member it reaches:
 * announcing them is only for members it does not reach, so it can wait and stay out of the way.
 */
const ANNOUNCE_DIRECT_DELAY_MS = 1000;

type Heads = { author: string; env: string; seq: number }[];

export interface SecretsSyncOptions {
  /** Shared with the team sync, so messages are handled in arrival order. */
  inbox: SyncInbox;
  secrets: SecretsService;
  teams: TeamService;
  bus: PeerBus;
  log: Logger;
}

export class SecretsSync {
  readonly #o: SecretsSyncOptions;
  readonly #bus: PeerBus;
  readonly #teams: TeamService;
  readonly #announce = new Map<
    string,
    { timer: ReturnType<typeof setTimeout>; except: Set<string> }
  >();
  #stopped = false;

  constructor(opts: SecretsSyncOptions) {
    this.#o = opts;
    this.#bus = opts.bus;
    this.#teams = opts.teams;
    const inbox = opts.inbox;
    const on = (
      type: number,
      fn: (from: PeerRef, h: Record<string, unknown>, r: Uint8Array[]) => unknown,
    ) => inbox.on(type, "ops", (from, m) => fn(from, m.header, m.records));
    on(SyncType.opsHeads, (from, h) => this.#onHeads(from, h, false));
    on(SyncType.opsWant, (from, h) => this.#onHeads(from, h, true));
    on(SyncType.ops, (from, h, r) => this.#onOps(from, h, r));
    this.#bus.onConnected((peer) => {
      for (const chain of this.#teams.sharedWith(peer.fingerprint)) {
        this.#sendHeads(peer.fingerprint, chain.id, SyncType.opsHeads);
      }
    });
    // A member who just joined (or this node, having joined) exchanges heads at once.
    this.#teams.onChange((team, added) => {
      if (!this.#teams.isMember(team, this.#teams.fingerprint)) return;
      for (const b of added) {
        if (b.body.type !== "member_added") continue;
        const fp = b.body.member.fingerprint;
        const joined = fp === this.#teams.fingerprint;
        for (const p of this.#bus.connectedPeers()) {
          if (!this.#teams.isMember(team, p.fingerprint)) continue;
          // Having just joined, ask every member for what we lack: whatever they sent before
          // our chain listed us (heads, pushed ops) was dropped as coming from a non-member.
          if (joined) this.#sendHeads(p.fingerprint, team, SyncType.opsWant);
          else if (p.fingerprint === fp) this.#sendHeads(p.fingerprint, team, SyncType.opsWant);
        }
      }
    });
    opts.secrets.onAdded((team, ops, source) => this.#onAdded(team, ops, source));
  }

  stop(): void {
    this.#stopped = true;
    for (const a of this.#announce.values()) clearTimeout(a.timer);
    this.#announce.clear();
  }

  #drop(reason: string): void {
    this.#o.inbox.drop(reason);
  }

  #members(team: string): PeerRef[] {
    return this.#bus.connectedPeers().filter((p) => this.#teams.isMember(team, p.fingerprint));
  }

  #sendHeads(fp: string, team: string, type: number): void {
    const heads = this.#o.secrets.log(team).heads().map((h) => [h.author, h.env, h.seq]);
    this.#bus.send(fp, type, encodeSync({ team, heads }));
  }

  /** Local ops go to every member now; a peer's are announced (coalesced) to the others. */
  #onAdded(team: string, ops: Op[], source: string | null): void {
    if (this.#stopped) return;
    if (source === null) {
      const msgs = packSync({ team }, ops.map((o) => o.record.bytes));
      for (const p of this.#members(team)) {
        for (const m of msgs) this.#bus.send(p.fingerprint, SyncType.ops, m);
      }
      return;
    }
    let pending = this.#announce.get(team);
    if (!pending) {
      pending = {
        except: new Set(),
        timer: setTimeout(
          () => {
            this.#announce.delete(team);
            for (const p of this.#members(team)) {
              if (!pending!.except.has(p.fingerprint)) {
                this.#sendHeads(p.fingerprint, team, SyncType.opsHeads);
              }
            }
          },
          ops.every((o) => o.body.author === source) ? ANNOUNCE_DIRECT_DELAY_MS : ANNOUNCE_DELAY_MS,
        ),
      };
      this.#announce.set(team, pending);
    }
    pending.except.add(source);
    for (const o of ops) pending.except.add(o.body.author);
  }

  #shared(team: unknown, fp: string): team is string {
    return typeof team === "string" && HEX64.test(team) &&
      this.#teams.isMember(team, this.#teams.fingerprint) && this.#teams.isMember(team, fp);
  }

  #onHeads(from: PeerRef, header: Record<string, unknown>, want: boolean): void {
    const heads = parseHeads(header.heads);
    if (!heads) return this.#drop("malformed");
    const team = header.team;
    if (!this.#shared(team, from.fingerprint)) return this.#drop("not_member");
    const log = this.#o.secrets.log(team);
    if (want) {
      const missing = log.missingFor(heads);
      for (const m of packSync({ team }, missing.map((o) => o.record.bytes))) {
        this.#bus.send(from.fingerprint, SyncType.ops, m);
      }
      return;
    }
    const behind = heads.some((h) => (log.head(h.author, h.env)?.seq ?? 0) < h.seq);
    if (behind) this.#sendHeads(from.fingerprint, team, SyncType.opsWant);
  }

  async #onOps(from: PeerRef, header: Record<string, unknown>, records: Uint8Array[]) {
    const team = header.team;
    if (!this.#shared(team, from.fingerprint)) return this.#drop("not_member");
    const { gap } = await this.#o.secrets.receive(team, records, from.fingerprint);
    // Our heads are the acknowledgement; a gap asks for what comes before.
    this.#sendHeads(from.fingerprint, team, gap ? SyncType.opsWant : SyncType.opsHeads);
  }
}

function parseHeads(v: unknown): Heads | null {
  if (!Array.isArray(v) || v.length > MAX_HEADS) return null;
  const out: Heads = [];
  for (const h of v) {
    if (
      !Array.isArray(h) || h.length !== 3 || typeof h[0] !== "string" || h[0].length > 64 ||
      typeof h[1] !== "string" || h[1].length > 32 || !Number.isSafeInteger(h[2]) || h[2] < 0
    ) return null;
    out.push({ author: h[0], env: h[1], seq: h[2] });
  }
  return out;
}
