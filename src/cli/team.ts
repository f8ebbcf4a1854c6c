/** Team commands: team create/list/members/log/remove/leave, invite, proposals, approve, reject, join. */
import { callDaemon } from "../ipc/client.ts";
import type { MemberView, ProposalView, TeamSummary } from "../team/views.ts";
import { durationFlag, oneOfFlag } from "./flag_values.ts";
import { formatRows, printResult } from "./output.ts";
import { CLIENT_PERMISSIONS, type CommandSpec, JSON_OPTION } from "./spec.ts";
import type { CommandContext } from "./context.ts";

const TEAM_OPTION = {
  team: { type: "string" as const, value: "TEAM", help: "team name or id (default: the only one)" },
};

function call(
  ctx: CommandContext,
  method: string,
  params: Record<string, unknown> = {},
  ms?: number,
) {
  return callDaemon(ctx.paths.socket, method, params, ms);
}

function show<T>(ctx: CommandContext, value: T, render: (v: T) => string): number {
  return printResult(ctx.bool("json"), value, render);
}

export const teamCreateCommand: CommandSpec = {
  name: "team create",
  summary: "create a team with this node as its first admin",
  args: "NAME",
  minArgs: 1,
  maxArgs: 1,
  options: { ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const t = await call(ctx, "team.create", { name: ctx.args[0] }) as TeamSummary;
    return show(ctx, t, () =>
      `created team ${t.name} (${t.id.slice(0, 16)}); you are its admin\n` +
      `invite a teammate: den invite --team ${t.name}${ctx.homeHint}\n`);
  },
};

export const teamListCommand: CommandSpec = {
  name: "team list",
  summary: "the teams this node is in",
  options: { ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const teams = await call(ctx, "team.list") as TeamSummary[];
    return show(
      ctx,
      teams,
      (ts) =>
        ts.length === 0
          ? `no teams yet: den team create NAME, or den join CODE${ctx.homeHint}\n`
          : formatRows(
            ["NAME", "ID", "MEMBERS", "ROLE", "STATE"],
            ts.map((t) => [t.name, t.id.slice(0, 16), String(t.members), t.role ?? "-", t.state]),
          ),
    );
  },
};

export const teamMembersCommand: CommandSpec = {
  name: "team members",
  summary: "members of a team: name, role, environments they read, fingerprint",
  args: "[TEAM]",
  maxArgs: 1,
  options: { ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const ms = await call(ctx, "team.members", { team: ctx.args[0] }) as MemberView[];
    return show(ctx, ms, (rows) =>
      formatRows(
        ["NAME", "ROLE", "READS", "JOINED", "FINGERPRINT"],
        rows.map((m) => [
          m.you ? `${m.name} (you)` : m.name,
          m.role,
          m.envs.join(",") || "-",
          m.joined.slice(0, 10),
          m.fingerprint,
        ]),
      ));
  },
};

interface LogRow {
  at: string;
  type: string;
  author: string;
  summary: string;
  rejected: string | null;
  reason: string | null;
  hash: string;
}

export const teamLogCommand: CommandSpec = {
  name: "team log",
  summary: "the team's audit trail: every signed change, in the order every member applies them",
  args: "[TEAM]",
  maxArgs: 1,
  options: { ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const rows = await call(ctx, "team.log", { team: ctx.args[0] }) as LogRow[];
    return show(
      ctx,
      rows,
      (rs) =>
        rs.map((r) =>
          `${r.at.replace("T", " ").slice(0, 19)}  ${r.hash.slice(0, 8)}  ${r.summary}` +
          (r.rejected ? `  [not applied: ${r.reason ?? r.rejected}]` : "")
        ).join("\n") + "\n",
    );
  },
};

function proposalLine(p: ProposalView): string {
  return `${p.id.slice(0, 12)}  ${p.team}  ${p.summary}  ` +
    `${p.state} (${p.approvals}/${p.required} approvals)  by ${p.author}`;
}

function printCode(ctx: CommandContext, p: ProposalView): string {
  if (p.code) {
    return `invite code (single use, expires ${p.expires}):\n\n${p.code}\n\n` +
      `on the new machine: den init --name NAME, start den daemon, then den join CODE\n`;
  }
  return `proposal ${p.id.slice(0, 12)} needs ${p.required - p.approvals} more approval(s); ` +
    `other admins: den approve ${p.id.slice(0, 12)}\n` +
    `once approved, den proposals${ctx.homeHint} prints the code\n`;
}

export const inviteCommand: CommandSpec = {
  name: "invite",
  summary: "propose inviting someone; prints a single-use code once the admins approve",
  options: {
    ...TEAM_OPTION,
    role: { type: "string", value: "member|admin", help: "the newcomer's role (default member)" },
    env: {
      type: "string",
      multiple: true,
      value: "E[,E…]",
      help: "environments the newcomer may read (default: default)",
    },
    expires: { type: "string", value: "DURATION", help: "how long the code works (default 24h)" },
    ...JSON_OPTION,
  },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const role = oneOfFlag(ctx, "role", ["member", "admin"] as const, "member");
    const envs = ctx.list("env").flatMap((e) => e.split(",")).map((e) => e.trim()).filter(Boolean);
    const p = await call(ctx, "team.invite", {
      team: ctx.string("team"),
      role,
      envs,
      expires_ms: durationFlag(ctx, "expires", 24 * 3600_000, 30 * 86_400_000),
    }) as ProposalView & { proposal: string };
    return show(ctx, { ...p, code: p.code ?? null }, () => printCode(ctx, p));
  },
};

export const proposalsCommand: CommandSpec = {
  name: "proposals",
  summary: "pending and past proposals (invites, removals, roles, policy) and their approvals",
  options: { ...TEAM_OPTION, ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const ps = await call(ctx, "team.proposals", { team: ctx.string("team") }) as ProposalView[];
    return show(ctx, ps, (rows) => {
      if (rows.length === 0) return "no proposals\n";
      return rows.map((p) => proposalLine(p) + (p.code ? `\n  code: ${p.code}` : "")).join("\n") +
        "\n";
    });
  },
};

function voteCommand(approve: boolean): CommandSpec {
  return {
    name: approve ? "approve" : "reject",
    summary: approve ? "approve a proposal (admins)" : "reject a proposal (admins)",
    args: "ID",
    minArgs: 1,
    maxArgs: 1,
    options: { ...JSON_OPTION },
    permissions: CLIENT_PERMISSIONS,
    async run(ctx) {
      const p = await call(ctx, approve ? "team.approve" : "team.reject", {
        id: ctx.args[0],
      }) as ProposalView;
      return show(ctx, p, () => `${proposalLine(p)}\n`);
    },
  };
}

export const teamRemoveCommand: CommandSpec = {
  name: "team remove",
  summary: "propose removing a member; takes effect once approved",
  args: "MEMBER",
  minArgs: 1,
  maxArgs: 1,
  options: { ...TEAM_OPTION, ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const p = await call(ctx, "team.remove", {
      team: ctx.string("team"),
      member: ctx.args[0],
    }) as ProposalView;
    return show(ctx, p, () =>
      `${proposalLine(p)}\n` +
      (p.state === "approved"
        ? `${ctx.args[0]} is removed: its sessions are refused and values it could read are ` +
          `marked for rotation (den env list)\n`
        : `other admins: den approve ${p.id.slice(0, 12)}\n`));
  },
};

export const teamLeaveCommand: CommandSpec = {
  name: "team leave",
  summary: "leave a team (its chains stay on this machine, nothing new arrives)",
  args: "TEAM",
  minArgs: 1,
  maxArgs: 1,
  options: { ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const r = await call(ctx, "team.leave", { team: ctx.args[0] });
    return show(ctx, r, () => `left ${ctx.args[0]}\n`);
  },
};

export const joinCommand: CommandSpec = {
  name: "join",
  summary: "join a team with an invite code (reaches the inviter directly or through a relay)",
  args: "CODE",
  minArgs: 1,
  maxArgs: 1,
  options: { ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const t = await call(ctx, "team.join", { code: ctx.args[0] }, 45_000) as
      & TeamSummary
      & { inviter: string };
    return show(ctx, t, () =>
      `joined ${t.name} (invited by ${t.inviter}); ${t.members} members\n` +
      `secrets: den env list --team ${t.name}${ctx.homeHint}\n`);
  },
};

export const TEAM_COMMANDS: readonly CommandSpec[] = [
  teamCreateCommand,
  teamListCommand,
  teamMembersCommand,
  teamLogCommand,
  teamRemoveCommand,
  teamLeaveCommand,
  inviteCommand,
  proposalsCommand,
  voteCommand(true),
  voteCommand(false),
  joinCommand,
];
