/** Help text for the whole CLI, a command group, and one command. */
import { type CommandSpec, GLOBAL_OPTIONS, type OptionSpec } from "./spec.ts";

function optionLine(name: string, o: OptionSpec): [string, string] {
  const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${o.value ? ` ${o.value}` : ""}`;
  return [flag, o.help + (o.multiple ? " (repeatable)" : "")];
}

function columns(rows: [string, string][], indent = "  "): string {
  const w = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `${indent}${a.padEnd(w)}  ${b}`).join("\n");
}

/** `den init --name NAME [--force] …`, wrapped to fit a terminal. */
export function usageLine(cmd: CommandSpec, width = 100): string {
  const opts = Object.entries(cmd.options).map(([n, o]) => {
    const flag = `--${n}${o.value ? ` ${o.value}` : ""}`;
    return (o.required ? flag : `[${flag}]`) + (o.multiple ? "…" : "");
  });
  const words = ["den", cmd.name, cmd.args ?? "", ...opts].filter(Boolean);
  const lines = [""];
  for (const w of words) {
    if (lines.at(-1)!.length + w.length + 1 > width - 7) lines.push("   ");
    lines[lines.length - 1] += (lines.at(-1)!.trim() ? " " : "") + w;
  }
  return lines.join("\n      ");
}

export function commandHelp(cmd: CommandSpec): string {
  const opts = { ...cmd.options, ...GLOBAL_OPTIONS };
  const parts = [
    `den ${cmd.name} — ${cmd.summary}`,
    "",
    `Usage: ${usageLine(cmd)}`,
  ];
  if (cmd.description) parts.push("", cmd.description);
  parts.push("", "Options:", columns(Object.entries(opts).map(([n, o]) => optionLine(n, o))));
  return parts.join("\n") + "\n";
}

/** Lists the commands under a prefix ("" for all, "team" for the team group). */
export function groupHelp(prefix: string, commands: readonly CommandSpec[]): string {
  const inGroup = commands.filter((c) => prefix === "" || c.name.startsWith(prefix + " "));
  const head = prefix === ""
    ? [
      "den — a private, post-quantum encrypted mesh for small teams: secrets, chat and VPN.",
      "",
      "Usage: den COMMAND [options]   (den COMMAND --help for its options)",
    ]
    : [`den ${prefix} — commands:`, "", `Usage: den ${prefix} COMMAND [options]`];
  return [
    ...head,
    "",
    "Commands:",
    columns(inGroup.map((c) => [`${c.name}${c.args ? " " + c.args : ""}`, c.summary])),
    "",
    "Global options:",
    columns(Object.entries(GLOBAL_OPTIONS).map(([n, o]) => optionLine(n, o))),
    "",
    "Exit codes: 0 ok, 1 error, 2 usage, 3 daemon not running, 4 not authorized,",
    "5 verification failed.",
  ].join("\n") + "\n";
}
