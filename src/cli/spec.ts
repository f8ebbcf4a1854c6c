/** What a command declares: its flags, arguments, help, permissions and handler. */
import type { CommandContext } from "./context.ts";

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  /** Placeholder shown in help, e.g. "HOST:PORT". */
  value?: string;
  help: string;
  /** The command cannot run without it (shown without brackets in the usage line). */
  required?: boolean;
}

export interface CommandSpec {
  /** Words after `den`, e.g. "status" or "peers verify". */
  name: string;
  summary: string;
  /** Positional arguments, e.g. "NAME [HOST:PORT]". */
  args?: string;
  minArgs?: number;
  maxArgs?: number;
  description?: string;
  options: Record<string, OptionSpec>;
  /** Deno permissions the command needs; every other one is revoked before it runs. */
  permissions: Deno.PermissionName[];
  run(ctx: CommandContext): Promise<number>;
}

/** Options every command accepts. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  home: {
    type: "string",
    value: "DIR",
    help: "keep every file of this node under DIR (or DEN_HOME)",
  },
  help: { type: "boolean", short: "h", help: "show this help" },
};

/** A client command reads config paths and talks to the socket (which needs read+write on it). */
export const CLIENT_PERMISSIONS: Deno.PermissionName[] = ["read", "write", "net", "env"];

export const JSON_OPTION: Record<string, OptionSpec> = {
  json: { type: "boolean", help: "print one JSON document" },
};
