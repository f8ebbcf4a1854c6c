/** Finds the command in argv, parses its flags strictly, drops permissions, and runs it. */
import { parseArgs } from "node:util";
import { DenError, Exit } from "../errors.ts";
import { CommandContext, type FlagValue } from "./context.ts";
import { commandHelp, groupHelp } from "./help.ts";
import { printError, writeOut } from "./output.ts";
import { type CommandSpec, GLOBAL_OPTIONS, type OptionSpec } from "./spec.ts";
import { closest } from "../util/suggest.ts";

const ALL_PERMISSIONS: Deno.PermissionName[] = [
  "read",
  "write",
  "net",
  "env",
  "sys",
  "run",
  "ffi",
];

function usageError(message: string, hint?: string): DenError {
  return new DenError("usage", message, { exit: Exit.usage, hint });
}

/**
 * Splits argv into the command and the rest; global flags may come first. The longest matching
 * command wins, so `peers verify NAME` is not read as `peers` with an argument.
 */
function findCommand(argv: string[], commands: readonly CommandSpec[]) {
  const flags: string[] = [];
  const words: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--home") {
      flags.push(a, argv[++i] ?? "");
      continue;
    }
    if (a.startsWith("-")) {
      flags.push(a);
      continue;
    }
    const candidate = [...words, a].join(" ");
    if (!commands.some((c) => c.name === candidate || c.name.startsWith(candidate + " "))) break;
    words.push(a);
  }
  // Back off to the longest prefix that is itself a command: `peers NAME` → `peers`, [NAME].
  let n = words.length;
  while (n > 0 && !commands.some((c) => c.name === words.slice(0, n).join(" "))) n--;
  const name = (n > 0 ? words.slice(0, n) : words).join(" ");
  const rest = [...flags, ...words.slice(n > 0 ? n : words.length), ...argv.slice(i)];
  return { name, cmd: commands.find((c) => c.name === name), rest, stray: argv[i] };
}

function parseFlags(cmd: CommandSpec, rest: string[]) {
  const options: Record<string, OptionSpec> = { ...cmd.options, ...GLOBAL_OPTIONS };
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: Object.fromEntries(
        Object.entries(options).map(([n, o]) => [n, {
          type: o.type,
          multiple: o.multiple ?? false,
          ...(o.short ? { short: o.short } : {}),
        }]),
      ),
      strict: true,
      allowPositionals: true,
    });
    return { values: values as Record<string, FlagValue>, positionals };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(msg)?.[1];
    if (unknown) {
      const near = closest(unknown.replace(/^-+/, ""), Object.keys(options));
      throw usageError(
        `unknown flag ${unknown} for den ${cmd.name}`,
        near ? `did you mean --${near}? (den ${cmd.name} --help)` : `see den ${cmd.name} --help`,
      );
    }
    throw usageError(`${msg.replace(/\. To specify.*$/s, "")}`, `see den ${cmd.name} --help`);
  }
}

/** Revokes what the command does not need, so a bug in it cannot reach further. */
async function dropPermissions(keep: Deno.PermissionName[]): Promise<void> {
  for (const name of ALL_PERMISSIONS) {
    if (!keep.includes(name)) await Deno.permissions.revoke({ name } as Deno.PermissionDescriptor);
  }
}

export async function runCli(argv: string[], commands: readonly CommandSpec[]): Promise<number> {
  try {
    if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
      writeOut(groupHelp("", commands));
      return Exit.ok;
    }
    if (argv[0] === "--version") argv = ["version"];
    const { name, cmd, rest, stray } = findCommand(argv, commands);
    if (!cmd) {
      if (name && (rest.includes("--help") || rest.includes("-h") || stray === undefined)) {
        writeOut(groupHelp(name, commands));
        return rest.includes("--help") || rest.includes("-h") ? Exit.ok : Exit.usage;
      }
      const typed = [name, stray].filter(Boolean).join(" ") || argv.join(" ");
      const names = commands.map((c) => c.name);
      const near = closest(typed, names) ??
        closest(typed, names.filter((n) => n.split(" ").length === 1));
      throw usageError(
        `unknown command '${typed}'`,
        near
          ? `did you mean 'den ${near}'? (den --help lists commands)`
          : "den --help lists commands",
      );
    }
    const { values, positionals } = parseFlags(cmd, rest);
    if (values.help) {
      writeOut(commandHelp(cmd));
      return Exit.ok;
    }
    const min = cmd.minArgs ?? 0, max = cmd.maxArgs ?? 0;
    if (positionals.length < min || positionals.length > max) {
      const why = positionals.length < min
        ? `den ${cmd.name} needs ${cmd.args}`
        : `unexpected argument '${positionals[max]}' for den ${cmd.name}`;
      throw usageError(why, `see den ${cmd.name} --help`);
    }
    for (const [n, o] of Object.entries(cmd.options)) {
      if (o.required && values[n] === undefined) {
        throw usageError(
          `den ${cmd.name} needs --${n}${o.value ? ` ${o.value}` : ""}`,
          `see den ${cmd.name} --help`,
        );
      }
    }
    await dropPermissions(cmd.permissions);
    return await cmd.run(new CommandContext(values, positionals, cmd.name));
  } catch (err) {
    return printError(err);
  }
}
