/** `den env …` and `den link`: the team's secrets through the local daemon. */
import { DenError, Exit } from "../errors.ts";
import { callDaemon } from "../ipc/client.ts";
import { formatDotenv, formatJson, formatShell, parseDotenv } from "../secrets/dotenv.ts";
import type { EnvEntryView, HistoryView } from "../secrets/service.ts";
import type { TeamSummary } from "../team/views.ts";
import type { CommandContext } from "./context.ts";
import { findLink, formatLink, LINK_FILE } from "./den_toml.ts";
import { oneOfFlag, positiveIntFlag, usageError } from "./flag_values.ts";
import {
  formatRows,
  printError,
  printJson,
  printResult,
  printWarning,
  writeOut,
} from "./output.ts";
import { CLIENT_PERMISSIONS, type CommandSpec, JSON_OPTION, type OptionSpec } from "./spec.ts";

const WHERE_OPTIONS: Record<string, OptionSpec> = {
  team: {
    type: "string",
    value: "TEAM",
    help: "team name or id (default: .den.toml, or the only one)",
  },
  env: { type: "string", value: "ENV", help: "environment (default: .den.toml, or default)" },
};

const MAX_STDIN_VALUE = 32 * 1024;

/** --team/--env, else the nearest .den.toml, else the daemon's defaults. */
async function where(ctx: CommandContext): Promise<{ team?: string; env?: string }> {
  const link = (ctx.string("team") && ctx.string("env")) ? null : await findLink(Deno.cwd());
  return { team: ctx.string("team") ?? link?.team, env: ctx.string("env") ?? link?.env };
}

async function call(ctx: CommandContext, method: string, params: Record<string, unknown> = {}) {
  return await callDaemon(ctx.paths.socket, method, { ...await where(ctx), ...params }, 60_000);
}

async function readStdin(limit: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of Deno.stdin.readable) {
    size += chunk.length;
    if (size > limit) throw usageError(`standard input is over ${limit} bytes`);
    chunks.push(chunk);
  }
  const all = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return new TextDecoder().decode(all);
}

export const envSetCommand: CommandSpec = {
  name: "env set",
  summary: "set variables (KEY=VALUE…; KEY alone reads the value from stdin)",
  args: "KEY=VALUE…",
  minArgs: 1,
  maxArgs: 1000,
  description: "Values are encrypted on this machine for each reader of the environment before " +
    "they are stored or sent. `den env set KEY < file` keeps a value out of shell history.",
  options: { ...WHERE_OPTIONS, ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const pairs: [string, string][] = [];
    for (const a of ctx.args) {
      const eq = a.indexOf("=");
      if (eq > 0) pairs.push([a.slice(0, eq), a.slice(eq + 1)]);
      else if (eq < 0 && ctx.args.length === 1) {
        if (Deno.stdin.isTerminal()) {
          throw usageError(`no value for ${a}`, `den env set ${a}=VALUE, or pipe the value in`);
        }
        pairs.push([a, (await readStdin(MAX_STDIN_VALUE)).replace(/\r?\n$/, "")]);
      } else throw usageError(`"${a.slice(0, 40)}" is not KEY=VALUE`);
    }
    const r = await call(ctx, "env.set", { pairs }) as { team: string; env: string; set: number };
    if (ctx.bool("json")) printJson(r);
    else writeOut(`set ${pairs.map(([k]) => k).join(", ")} in ${r.team}/${r.env}\n`);
    return 0;
  },
};

export const envGetCommand: CommandSpec = {
  name: "env get",
  summary: "print one value (bare, with a newline)",
  args: "KEY",
  minArgs: 1,
  maxArgs: 1,
  options: { ...WHERE_OPTIONS },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const r = await call(ctx, "env.get", { key: ctx.args[0] }) as { value: string };
    writeOut(r.value + "\n");
    return 0;
  },
};

export const envListCommand: CommandSpec = {
  name: "env list",
  summary: "keys with version, author and update time; values masked unless --show",
  options: {
    ...WHERE_OPTIONS,
    show: { type: "boolean", help: "print the values (those you can read)" },
    ...JSON_OPTION,
  },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const rows = await call(ctx, "env.list", { show: ctx.bool("show") }) as EnvEntryView[];
    return printResult(
      ctx.bool("json"),
      rows,
      (rows) =>
        rows.length === 0 ? "no variables set here yet: den env set KEY=VALUE\n" : formatRows(
          ["KEY", "VALUE", "VERSION", "AUTHOR", "UPDATED", ""],
          rows.map((r) => [
            r.key,
            !r.readable ? "(not readable by you)" : r.value ?? "••••••••",
            String(r.version),
            r.author,
            r.updated.replace("T", " ").slice(0, 19),
            r.rotate ? "ROTATE: a former member could read it" : "",
          ]),
        ),
    );
  },
};

export const envRmCommand: CommandSpec = {
  name: "env rm",
  summary: "delete variables (history keeps their past versions)",
  args: "KEY…",
  minArgs: 1,
  maxArgs: 1000,
  options: { ...WHERE_OPTIONS },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    await call(ctx, "env.rm", { keys: ctx.args });
    writeOut(`removed ${ctx.args.join(", ")}\n`);
    return 0;
  },
};

export const envHistoryCommand: CommandSpec = {
  name: "env history",
  summary: "every version of a key (or of all keys): who changed it, and when",
  args: "[KEY]",
  maxArgs: 1,
  options: { ...WHERE_OPTIONS, ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const rows = await call(ctx, "env.history", { key: ctx.args[0] }) as HistoryView[];
    return printResult(ctx.bool("json"), rows, (rows) =>
      formatRows(
        ["KEY", "VERSION", "ACTION", "AUTHOR", "AT", ""],
        rows.map((r) => [
          r.key,
          String(r.version),
          r.action,
          r.author,
          r.at.replace("T", " ").slice(0, 19),
          r.current ? "current" : "",
        ]),
      ));
  },
};

export const envRollbackCommand: CommandSpec = {
  name: "env rollback",
  summary: "set a key back to an earlier version's value (as a new version)",
  args: "KEY",
  minArgs: 1,
  maxArgs: 1,
  options: {
    ...WHERE_OPTIONS,
    to: { type: "string", value: "VERSION", help: "the version to go back to", required: true },
  },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const version = positiveIntFlag(ctx, "to", 2 ** 31);
    const r = await call(ctx, "env.rollback", { key: ctx.args[0], version }) as {
      version: number;
    };
    writeOut(`${ctx.args[0]} now has version ${version}'s value, as version ${r.version}\n`);
    return 0;
  },
};

export const envImportCommand: CommandSpec = {
  name: "env import",
  summary: "set every variable of a dotenv file (- reads stdin)",
  args: "FILE",
  minArgs: 1,
  maxArgs: 1,
  options: { ...WHERE_OPTIONS, ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const file = ctx.args[0];
    let text: string;
    try {
      text = file === "-" ? await readStdin(1024 * 1024) : await Deno.readTextFile(file);
    } catch (err) {
      if (err instanceof DenError) throw err;
      throw new DenError("read_failed", `cannot read ${file}: ${(err as Error).message}`, {
        exit: Exit.usage,
      });
    }
    let entries;
    try {
      entries = parseDotenv(text);
    } catch (err) {
      throw new DenError("bad_dotenv", `${file}: ${(err as Error).message}`, { exit: Exit.usage });
    }
    if (entries.length === 0) throw usageError(`${file} has no variables`);
    const r = await call(ctx, "env.set", {
      pairs: entries.map((e) => [e.key, e.value]),
    }) as { team: string; env: string; set: number };
    if (ctx.bool("json")) printJson(r);
    else writeOut(`imported ${r.set} variables into ${r.team}/${r.env}\n`);
    return 0;
  },
};

async function readableValues(ctx: CommandContext) {
  const r = await call(ctx, "env.values") as {
    entries: { key: string; value: string }[];
    skipped: string[];
  };
  if (r.skipped.length > 0) {
    printWarning(`skipped ${r.skipped.length} key(s) you cannot read: ${r.skipped.join(", ")}`);
  }
  return r.entries;
}

export const envExportCommand: CommandSpec = {
  name: "env export",
  summary: "print every variable you can read as dotenv, JSON or shell exports",
  options: {
    ...WHERE_OPTIONS,
    format: { type: "string", value: "dotenv|json|shell", help: "output format (default dotenv)" },
  },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const format = oneOfFlag(ctx, "format", ["dotenv", "json", "shell"] as const, "dotenv");
    const entries = await readableValues(ctx);
    const render = { dotenv: formatDotenv, json: formatJson, shell: formatShell }[format];
    writeOut(render(entries));
    return 0;
  },
};

export const envRunCommand: CommandSpec = {
  name: "env run",
  summary: "run a command with the variables in its environment",
  args: "-- CMD [ARG…]",
  minArgs: 1,
  maxArgs: 10_000,
  description: "Exits with the command's exit code; signals sent to den are passed to it.",
  options: { ...WHERE_OPTIONS },
  permissions: [...CLIENT_PERMISSIONS, "run"],
  async run(ctx) {
    const entries = await readableValues(ctx);
    const { runWithEnv } = await import("./env_run.ts");
    try {
      return await runWithEnv(ctx.args, Object.fromEntries(entries.map((e) => [e.key, e.value])));
    } catch (err) {
      // The shell's convention for a command that could not be started.
      printError(new DenError("run_failed", (err as Error).message));
      return 127;
    }
  },
};

function accessCommand(grant: boolean): CommandSpec {
  return {
    name: grant ? "env grant" : "env revoke",
    summary: grant
      ? "let a member read an environment (admins); values are re-encrypted for them"
      : "stop a member reading an environment's future values (admins)",
    args: "MEMBER",
    minArgs: 1,
    maxArgs: 1,
    options: { ...WHERE_OPTIONS, ...JSON_OPTION },
    permissions: CLIENT_PERMISSIONS,
    async run(ctx) {
      if (!ctx.string("env")) {
        throw usageError(`den env ${grant ? "grant" : "revoke"} needs --env E`);
      }
      const r = await call(ctx, grant ? "env.grant" : "env.revoke", { member: ctx.args[0] });
      if (ctx.bool("json")) printJson(r);
      else {
        writeOut(
          grant
            ? `${ctx.args[0]} can now read ${ctx.string("env")}\n`
            : `${ctx.args[0]} no longer reads new values of ${ctx.string("env")}; ` +
              `rotate the values it could read (den env list marks them)\n`,
        );
      }
      return 0;
    },
  };
}

export const linkCommand: CommandSpec = {
  name: "link",
  summary: `write ${LINK_FILE} here so den env in this directory needs no --team/--env`,
  args: "TEAM",
  minArgs: 1,
  maxArgs: 1,
  options: { env: WHERE_OPTIONS.env },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const teams = await callDaemon(ctx.paths.socket, "team.list") as TeamSummary[];
    const t = teams.find((t) => t.name === ctx.args[0] || t.id === ctx.args[0]);
    if (!t) {
      throw new DenError("no_such_team", `this node is not in a team called ${ctx.args[0]}`, {
        exit: Exit.notAuthorized,
        hint: "den team list shows your teams",
      });
    }
    const env = ctx.string("env") ?? "default";
    await Deno.writeTextFile(LINK_FILE, formatLink(t.name, env));
    writeOut(`wrote ${LINK_FILE}: den env here uses ${t.name}/${env}\n`);
    return 0;
  },
};

export const ENV_COMMANDS: readonly CommandSpec[] = [
  envSetCommand,
  envGetCommand,
  envListCommand,
  envRmCommand,
  envHistoryCommand,
  envRollbackCommand,
  envImportCommand,
  envExportCommand,
  envRunCommand,
  accessCommand(true),
  accessCommand(false),
  linkCommand,
];
