/** What `den team …` and `den proposals` show: plain objects built from a team's state. */
import { shortFingerprint } from "../identity/fingerprint.ts";
import { type Proposal, requiredApprovals, type TeamState } from "./state.ts";

export interface TeamSummary {
  name: string;
  id: string;
  members: number;
  role: string | null;
  /** member, left or removed: this node's standing. */
  state: string;
}

export interface MemberView {
  name: string;
  fingerprint: string;
  role: string;
  envs: string[];
  joined: string;
  you: boolean;
}

export interface ProposalView {
  id: string;
  team: string;
  team_id: string;
  kind: string;
  approvals: number;
  required: number;
  state: string;
  author: string;
  created: string;
  summary: string;
  approved_by: string[];
  rejected_by: string[];
  expires: string | null;
  /** The invite code, for the inviter, once the invite is approved and unused. */
  code?: string | null;
}

export function teamSummary(state: TeamState, me: string): TeamSummary {
  const mine = state.members.get(me);
  return {
    name: state.name,
    id: state.id,
    members: state.members.size,
    role: mine?.role ?? null,
    state: mine ? "member" : state.former.get(me)?.reason ?? "joining",
  };
}

export function memberViews(state: TeamState, me: string): MemberView[] {
  return [...state.members.values()]
    .sort((a, b) => a.name.localeCompare(b.name) || (a.fingerprint < b.fingerprint ? -1 : 1))
    .map((m) => ({
      name: m.name,
      fingerprint: m.fingerprint,
      role: m.role,
      envs: m.role === "admin" ? ["*"] : m.envs,
      joined: new Date(m.joined).toISOString(),
      you: m.fingerprint === me,
    }));
}

export function nameOf(state: TeamState, fp: string): string {
  return state.members.get(fp)?.name ?? state.former.get(fp)?.name ?? shortFingerprint(fp);
}

export function proposalView(state: TeamState, p: Proposal, now: number): ProposalView {
  const admins = new Set(
    [...state.members.values()].filter((m) => m.role === "admin").map((m) => m.fingerprint),
  );
  const expires = p.body.kind === "invite" ? p.body.expires : null;
  const expired = expires !== null && expires <= now && p.state !== "used";
  return {
    id: p.id,
    team: state.name,
    team_id: state.id,
    kind: p.body.kind,
    approvals: p.approvals.filter((a) => admins.has(a)).length,
    required: requiredApprovals(state),
    state: expired && p.state !== "rejected" ? "expired" : p.state,
    author: nameOf(state, p.author),
    created: new Date(p.created).toISOString(),
    summary: describeProposal(state, p),
    approved_by: p.approvals.map((fp) => nameOf(state, fp)),
    rejected_by: p.rejections.map((fp) => nameOf(state, fp)),
    expires: expires === null ? null : new Date(expires).toISOString(),
  };
}

function describeProposal(state: TeamState, p: Proposal): string {
  const b = p.body;
  switch (b.kind) {
    case "invite":
      return `invite a new ${b.role} (reads: ${
        b.role === "admin" ? "all" : b.envs.join(", ") || "none"
      })`;
    case "remove":
      return `remove ${nameOf(state, b.member)}`;
    case "role":
      return `make ${nameOf(state, b.member)} ${b.role === "admin" ? "an admin" : "a member"}`;
    case "policy":
      return b.policy.type === "majority"
        ? "require a majority of admins"
        : `require ${b.policy.n} admin approval(s)`;
  }
}
