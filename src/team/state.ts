/**
 * The team state fold: members, roles, read access, proposals and the audit log, computed by
 * walking blocks in fold order (docs/TEAMS.md "Fold"). Pure and synchronous: signatures, including
 * invite proofs, were checked before a block got here.
 */
import { shortFingerprint } from "../identity/fingerprint.ts";
import type { Block } from "./block.ts";
import type { BlockBody, BlockType, MemberInfo, Policy, ProposalBody, Role } from "./types.ts";

export interface Member extends MemberInfo {
  role: Role;
  /** Environments this member may read (admins read all of them anyway); sorted. */
  envs: string[];
  joined: number;
  /** The admin whose member_added block let them in; null for the team's creator. */
  added_by: string | null;
  /** The invite proposal they joined through; null for the team's creator. */
  via: string | null;
}

export interface FormerMember extends Member {
  left: number;
  reason: "removed" | "left";
  /** The remove proposal's id; null when they left on their own. */
  by: string | null;
}

export type ProposalState = "pending" | "approved" | "rejected" | "used";

export interface Proposal {
  id: string;
  author: string;
  created: number;
  body: ProposalBody;
  /** Fingerprints in voting order; the proposer's own approval comes first. */
  approvals: string[];
  rejections: string[];
  state: ProposalState;
  /** ts of the block whose application decided it. */
  decided: number | null;
}

export interface LogEntry {
  hash: string;
  type: BlockType;
  author: string;
  ts: number;
  /** A sentence for people, e.g. "alice proposed inviting a member (envs: default)". */
  summary: string;
  /** Why the fold skipped the block (an error code), or null if it took effect. */
  rejected: string | null;
  /** The longer explanation that goes with `rejected`. */
  reason: string | null;
}

export interface TeamState {
  id: string;
  name: string;
  policy: Policy;
  members: Map<string, Member>;
  former: Map<string, FormerMember>;
  /** In creation (fold) order. */
  proposals: Map<string, Proposal>;
  log: LogEntry[];
}

export interface Rejection {
  code: string;
  message: string;
}

export interface FoldContext {
  /** Whether a member_added block's invite_sig verified (checked asynchronously beforehand). */
  inviteSigOk(blockHash: string): boolean;
}

function adminsOf(state: TeamState): Set<string> {
  const out = new Set<string>();
  for (const m of state.members.values()) if (m.role === "admin") out.add(m.fingerprint);
  return out;
}

export function isAdmin(state: TeamState, fp: string): boolean {
  return state.members.get(fp)?.role === "admin";
}

/** Majority: floor(admins/2)+1. Count n: n, capped at the number of admins. Never below 1. */
export function requiredApprovals(state: TeamState): number {
  const admins = adminsOf(state).size;
  const p = state.policy;
  const n = p.type === "majority" ? Math.floor(admins / 2) + 1 : Math.min(p.n, admins);
  return Math.max(1, n);
}

/** Who may decrypt values of `env`: every admin, and members granted it; sorted by fingerprint. */
export function readersOf(state: TeamState, env: string): Member[] {
  return [...state.members.values()]
    .filter((m) => m.role === "admin" || m.envs.includes(env))
    .sort((a, b) => a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0);
}

export function genesisState(genesis: Block): TeamState {
  const b = genesis.body;
  if (b.type !== "genesis") throw new TypeError("the first block of a team must be its genesis");
  const creator: Member = {
    ...copyInfo(b.member),
    role: "admin",
    envs: [],
    joined: b.ts,
    added_by: null,
    via: null,
  };
  const state: TeamState = {
    id: genesis.hash,
    name: b.name,
    policy: { ...b.policy },
    members: new Map([[creator.fingerprint, creator]]),
    former: new Map(),
    proposals: new Map(),
    log: [],
  };
  state.log.push(entry(genesis, `${creator.name} created the team "${b.name}"`, null));
  return state;
}

/** Folds `others` (already in fold order, without the genesis) onto the genesis. */
export function foldBlocks(genesis: Block, others: Iterable<Block>, ctx: FoldContext): TeamState {
  const state = genesisState(genesis);
  for (const block of others) {
    const rejection = applyBlock(state, block, ctx);
    if (rejection) skipBlock(state, block, rejection);
  }
  return state;
}

/** Records a block the fold did not apply. */
export function skipBlock(state: TeamState, block: Block, rejection: Rejection): void {
  state.log.push(entry(block, describe(state, block.body), rejection));
}

/**
 * Applies one block if it is valid on `state`, logs it and settles pending proposals. Leaves
 * `state` untouched and returns why when it is not valid.
 */
export function applyBlock(state: TeamState, block: Block, ctx: FoldContext): Rejection | null {
  const b = block.body;
  const author = state.members.get(b.author);
  if (!author) {
    const former = state.former.get(b.author);
    return former
      ? reject("removed_member", `${former.name} is no longer a member (${former.reason})`)
      : reject("not_member", `the author ${shortFingerprint(b.author)} is not a member`);
  }
  const effect = plan(state, block, author, ctx);
  if (typeof effect !== "function") return effect;
  const summary = describe(state, b);
  effect();
  const notes = settle(state, b.ts);
  state.log.push(entry(block, [summary, ...notes].join("; "), null));
  return null;
}

type Effect = () => void;

/** Checks a block against the state; returns the change it makes, or why it cannot. */
function plan(
  state: TeamState,
  block: Block,
  author: Member,
  ctx: FoldContext,
): Effect | Rejection {
  const b = block.body;
  const admin = author.role === "admin";
  const notAdmin = () => reject("not_admin", `${author.name} is not an admin`);
  switch (b.type) {
    case "genesis":
      return reject("wrong_team", "a team has exactly one genesis");
    case "propose": {
      if (!admin) return notAdmin();
      const bad = checkProposal(state, b.proposal, b.ts);
      if (bad) return bad;
      return () => {
        state.proposals.set(block.hash, {
          id: block.hash,
          author: b.author,
          created: b.ts,
          body: structuredClone(b.proposal),
          approvals: [b.author],
          rejections: [],
          state: "pending",
          decided: null,
        });
      };
    }
    case "approve":
    case "reject": {
      if (!admin) return notAdmin();
      const p = state.proposals.get(b.proposal);
      if (!p) return reject("unknown_proposal", `no proposal ${short(b.proposal)} in this team`);
      if (p.state !== "pending") {
        return reject("not_pending", `proposal ${short(p.id)} is already ${p.state}`);
      }
      if (p.approvals.includes(b.author) || p.rejections.includes(b.author)) {
        return reject("already_voted", `${author.name} already voted on ${short(p.id)}`);
      }
      return () => (b.type === "approve" ? p.approvals : p.rejections).push(b.author);
    }
    case "member_added": {
      if (!admin) return notAdmin();
      const p = state.proposals.get(b.proposal);
      if (!p) return reject("unknown_proposal", `no proposal ${short(b.proposal)} in this team`);
      const invite = p.body;
      if (invite.kind !== "invite") {
        return reject("not_invite", `proposal ${short(p.id)} is not an invite`);
      }
      if (p.state === "used") return reject("invite_used", `invite ${short(p.id)} was used`);
      if (p.state !== "approved") {
        return reject("not_approved", `invite ${short(p.id)} is ${p.state}, not approved`);
      }
      if (b.ts > invite.expires) {
        return reject("invite_expired", `invite ${short(p.id)} expired at ${invite.expires}`);
      }
      if (!ctx.inviteSigOk(block.hash)) {
        return reject("bad_invite_sig", `the join proof is not signed by invite ${short(p.id)}`);
      }
      if (state.members.has(b.member.fingerprint)) {
        return reject("duplicate_member", `${b.member.name} is already a member`);
      }
      return () => {
        state.former.delete(b.member.fingerprint);
        state.members.set(b.member.fingerprint, {
          ...copyInfo(b.member),
          role: invite.role,
          envs: [...invite.envs].sort(),
          joined: b.ts,
          added_by: b.author,
          via: p.id,
        });
        p.state = "used";
      };
    }
    case "member_left": {
      if (admin && adminsOf(state).size === 1 && state.members.size > 1) {
        return reject("last_admin", `${author.name} is the only admin; make someone else admin`);
      }
      return () => retire(state, author, b.ts, "left", null);
    }
    case "grant":
    case "revoke": {
      if (!admin) return notAdmin();
      const target = state.members.get(b.member);
      if (!target) return reject("not_member", `${nameOf(state, b.member)} is not a member`);
      const has = target.envs.includes(b.env);
      if (b.type === "grant" && has) {
        return reject("already_granted", `${target.name} can already read "${b.env}"`);
      }
      if (b.type === "revoke" && !has) {
        return reject("not_granted", `${target.name} was not granted "${b.env}"`);
      }
      return () => {
        target.envs = b.type === "grant"
          ? [...target.envs, b.env].sort()
          : target.envs.filter((e) => e !== b.env);
      };
    }
    case "addresses":
      return () => {
        author.addresses = [...b.addresses];
      };
  }
}

function checkProposal(state: TeamState, p: ProposalBody, ts: number): Rejection | null {
  switch (p.kind) {
    case "invite":
      return p.expires > ts
        ? null
        : reject("invite_expired", "the invite expires before it starts");
    case "remove":
    case "role": {
      const target = state.members.get(p.member);
      if (!target) return reject("not_member", `${nameOf(state, p.member)} is not a member`);
      if (p.kind === "role" && p.role === target.role) {
        return reject("same_role", `${target.name} is already ${article(p.role)}`);
      }
      if (target.role === "admin" && adminsOf(state).size === 1) {
        return reject("last_admin", `${target.name} is the only admin`);
      }
      return null;
    }
    case "policy":
      return null;
  }
}

/**
 * Decides pending proposals in creation order, counting votes of current admins only. Starts over
 * after each decision, since one decision can change the admins or the policy the next one uses.
 */
function settle(state: TeamState, ts: number): string[] {
  const notes: string[] = [];
  for (let changed = true; changed;) {
    changed = false;
    const admins = adminsOf(state);
    const required = requiredApprovals(state);
    for (const p of state.proposals.values()) {
      if (p.state !== "pending") continue;
      const yes = p.approvals.filter((fp) => admins.has(fp)).length;
      const no = p.rejections.filter((fp) => admins.has(fp)).length;
      if (yes >= required) {
        const done = enact(state, p, ts);
        p.state = done === null ? "rejected" : "approved";
        notes.push(done ?? `proposal ${short(p.id)} could no longer take effect`);
      } else if (no > admins.size - required) {
        p.state = "rejected";
        notes.push(`proposal ${short(p.id)} rejected`);
      } else continue;
      p.decided = ts;
      changed = true;
      break;
    }
  }
  return notes;
}

/** Carries out an approved proposal; null if the team changed so that it no longer applies. */
function enact(state: TeamState, p: Proposal, ts: number): string | null {
  const id = short(p.id);
  const body = p.body;
  switch (body.kind) {
    case "invite":
      return `invite ${id} approved`;
    case "policy":
      state.policy = { ...body.policy };
      return `proposal ${id} approved: ${policyText(body.policy)}`;
    case "remove":
    case "role": {
      const target = state.members.get(body.member);
      if (!target) return null;
      const demotes = body.kind === "remove" || body.role !== "admin";
      if (target.role === "admin" && demotes && adminsOf(state).size === 1) return null;
      if (body.kind === "remove") {
        retire(state, target, ts, "removed", p.id);
        return `proposal ${id} approved: ${target.name} removed`;
      }
      if (target.role === body.role) return null;
      target.role = body.role;
      return `proposal ${id} approved: ${target.name} is now ${article(body.role)}`;
    }
  }
}

function retire(
  state: TeamState,
  m: Member,
  ts: number,
  reason: FormerMember["reason"],
  by: string | null,
): void {
  state.members.delete(m.fingerprint);
  state.former.set(m.fingerprint, { ...m, left: ts, reason, by });
}

function describe(state: TeamState, b: BlockBody): string {
  const who = nameOf(state, b.author);
  switch (b.type) {
    case "genesis":
      return `${who} created the team "${b.name}"`;
    case "propose":
      return `${who} proposed ${proposalText(state, b.proposal)}`;
    case "approve":
    case "reject": {
      const p = state.proposals.get(b.proposal);
      const what = p ? ` (${proposalText(state, p.body)})` : "";
      const verb = b.type === "approve" ? "approved" : "rejected";
      return `${who} ${verb} proposal ${short(b.proposal)}${what}`;
    }
    case "member_added":
      return `${who} added ${b.member.name} (invite ${short(b.proposal)})`;
    case "member_left":
      return `${who} left the team`;
    case "grant":
      return `${who} granted ${nameOf(state, b.member)} read access to "${b.env}"`;
    case "revoke":
      return `${who} revoked ${nameOf(state, b.member)}'s read access to "${b.env}"`;
    case "addresses":
      return `${who} updated their addresses (${b.addresses.join(", ") || "none"})`;
  }
}

function proposalText(state: TeamState, p: ProposalBody): string {
  switch (p.kind) {
    case "invite":
      return `inviting ${article(p.role)} (envs: ${p.envs.join(", ") || "none"})`;
    case "remove":
      return `removing ${nameOf(state, p.member)}`;
    case "role":
      return `making ${nameOf(state, p.member)} ${article(p.role)}`;
    case "policy":
      return policyText(p.policy);
  }
}

function policyText(p: Policy): string {
  return p.type === "majority"
    ? "requiring a majority of admins"
    : `requiring ${p.n} approval${p.n === 1 ? "" : "s"}`;
}

function article(role: Role): string {
  return role === "admin" ? "an admin" : "a member";
}

function nameOf(state: TeamState, fp: string): string {
  return state.members.get(fp)?.name ?? state.former.get(fp)?.name ?? shortFingerprint(fp);
}

function short(id: string): string {
  return id.slice(0, 8);
}

function reject(code: string, message: string): Rejection {
  return { code, message };
}

function entry(block: Block, summary: string, rejection: Rejection | null): LogEntry {
  const b = block.body;
  return {
    hash: block.hash,
    type: b.type,
    author: b.author,
    ts: b.ts,
    summary,
    rejected: rejection?.code ?? null,
    reason: rejection?.message ?? null,
  };
}

function copyInfo(m: MemberInfo): MemberInfo {
  return {
    name: m.name,
    fingerprint: m.fingerprint,
    keys: { ...m.keys },
    addresses: [...m.addresses],
  };
}
