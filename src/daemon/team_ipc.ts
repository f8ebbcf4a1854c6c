/** Control-socket methods for teams, proposals, invites and joins (docs/IPC.md). */
import { DenError, Exit } from "../errors.ts";
import type { Identity } from "../identity/keys.ts";
import { intParam, optionalString, type Params, stringList, stringParam } from "../ipc/params.ts";
import type { TeamChain } from "../team/chain.ts";
import { decodeInvite, encodeInvite } from "../team/invite_code.ts";
import type { TeamService } from "../team/service.ts";
import type { TeamSync } from "../team/sync.ts";
import type { Role } from "../team/types.ts";
import {
  memberViews,
  nameOf,
  type ProposalView,
  proposalView,
  teamSummary,
} from "../team/views.ts";
import type { InviteCode } from "../team/invite_code.ts";

export interface TeamIpcContext {
  teams: TeamService;
  sync: TeamSync;
  identity: Identity;
  fingerprint: string;
  now: () => number;
  /** HOST:PORT addresses and relay URLs this node can be reached at. */
  addresses: () => { direct: string[]; relays: string[] };
  /** Makes the inviter of a code a peer (and its relays usable) for the join. */
  reachInviter: (code: InviteCode) => void;
  joinTimeoutMs: number;
}

const MAX_EXPIRY_MS = 30 * 24 * 3600_000;

export function teamHandlers(c: TeamIpcContext): [string, (p: Params) => unknown][] {
  const views = async (chain: TeamChain, ids?: Set<string>): Promise<ProposalView[]> => {
    const s = chain.state();
    const out: ProposalView[] = [];
    for (const p of s.proposals.values()) {
      if (ids && !ids.has(p.id)) continue;
      const v = proposalView(s, p, c.now());
      if (p.body.kind === "invite" && p.author === c.fingerprint) {
        v.code = v.state === "approved" ? await inviteCode(c, chain, p.id) : null;
      }
      out.push(v);
    }
    return out.sort((a, b) => a.created < b.created ? -1 : a.created > b.created ? 1 : 0);
  };
  const one = async (chain: TeamChain, id: string) => (await views(chain, new Set([id])))[0];
  const member = (chain: TeamChain, who: string): string => {
    const s = chain.state();
    const hits = [...s.members.values()].filter((m) =>
      m.name === who || m.fingerprint === who || (who.length >= 8 && m.fingerprint.startsWith(who))
    );
    if (hits.length === 1) return hits[0].fingerprint;
    throw new DenError(
      hits.length ? "member_ambiguous" : "no_such_member",
      hits.length ? `several members match ${who}` : `${who} is not a member of ${s.name}`,
      { exit: Exit.usage, hint: `den team members ${s.name} lists them with fingerprints` },
    );
  };
  return [
    ["team.create", async (p) => {
      const chain = await c.teams.create(stringParam(p, "name", 64));
      return teamSummary(chain.state(), c.fingerprint);
    }],
    ["team.list", () =>
      c.teams.chains().map((ch) => teamSummary(ch.state(), c.fingerprint))
        .sort((a, b) => a.name.localeCompare(b.name))],
    [
      "team.members",
      (p) => memberViews(c.teams.resolve(optionalString(p, "team", 128)).state(), c.fingerprint),
    ],
    ["team.log", (p) => {
      const s = c.teams.resolve(optionalString(p, "team", 128)).state();
      return s.log.map((e) => ({
        at: new Date(e.ts).toISOString(),
        type: e.type,
        author: nameOf(s, e.author),
        summary: e.summary,
        rejected: e.rejected,
        reason: e.reason,
        hash: e.hash,
      }));
    }],
    ["team.invite", async (p) => {
      const chain = c.teams.resolve(optionalString(p, "team", 128));
      const role = (optionalString(p, "role", 16) ?? "member") as Role;
      if (role !== "member" && role !== "admin") {
        throw new DenError("bad_role", `role must be member or admin, not ${role}`, {
          exit: Exit.usage,
        });
      }
      const envs = stringList(p, "envs", 32, 32);
      const block = await c.teams.proposeInvite(
        chain,
        role,
        envs.length ? envs : ["default"],
        intParam(p, "expires_ms", 60_000, MAX_EXPIRY_MS),
      );
      return { proposal: block.hash, ...await one(chain, block.hash) };
    }],
    ["team.proposals", async (p) => {
      const team = optionalString(p, "team", 128);
      const chains = team ? [c.teams.resolve(team)] : c.teams.chains();
      return (await Promise.all(chains.map((ch) => views(ch)))).flat();
    }],
    ["team.approve", async (p) => {
      const { chain, id } = await c.teams.vote(stringParam(p, "id", 64), true);
      return await one(chain, id);
    }],
    ["team.reject", async (p) => {
      const { chain, id } = await c.teams.vote(stringParam(p, "id", 64), false);
      return await one(chain, id);
    }],
    ["team.remove", async (p) => {
      const chain = c.teams.resolve(optionalString(p, "team", 128));
      const fp = member(chain, stringParam(p, "member", 128));
      if (fp === c.fingerprint) {
        throw new DenError("remove_self", "you cannot propose removing yourself", {
          exit: Exit.usage,
          hint: `to leave the team: den team leave ${chain.state().name}`,
        });
      }
      const block = await c.teams.propose(chain, { kind: "remove", member: fp });
      return await one(chain, block.hash);
    }],
    ["team.leave", async (p) => {
      const chain = c.teams.resolve(stringParam(p, "team", 128));
      await c.teams.leave(chain);
      return { left: chain.state().name, id: chain.id };
    }],
    ["team.join", async (p) => {
      const code = await decodeInvite(stringParam(p, "code", 8192), c.now());
      const chain = await c.sync.join(code, () => c.reachInviter(code), c.joinTimeoutMs);
      const s = chain.state();
      return { ...teamSummary(s, c.fingerprint), inviter: code.inviter.name };
    }],
  ];
}

/** The code for an approved invite of ours, or null once its one-time key is gone. */
async function inviteCode(
  c: TeamIpcContext,
  chain: TeamChain,
  proposal: string,
): Promise<string | null> {
  const seed = c.teams.inviteSeed(proposal);
  const p = chain.state().proposals.get(proposal);
  if (!seed || !p || p.body.kind !== "invite") return null;
  const { direct, relays } = c.addresses();
  return await encodeInvite({
    team: chain.id,
    teamName: chain.state().name,
    proposal,
    inviter: {
      fingerprint: c.fingerprint,
      name: c.identity.name,
      ed25519: c.identity.publicKeys.ed25519,
    },
    seed,
    expires: p.body.expires,
    role: p.body.role,
    envs: p.body.envs,
    addresses: direct,
    relays,
  }, c.identity.signing);
}
