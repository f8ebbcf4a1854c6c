/** What a running command gets: its parsed flags and arguments, and the node's paths. */
import { type DenPaths, resolvePaths } from "../config/paths.ts";

export type FlagValue = string | boolean | string[] | undefined;

export class CommandContext {
  readonly flags: Record<string, FlagValue>;
  readonly args: string[];
  #paths: DenPaths | null = null;

  constructor(flags: Record<string, FlagValue>, args: string[]) {
    this.flags = flags;
    this.args = args;
  }

  /** Paths from --home, else DEN_HOME, else the XDG locations. */
  get paths(): DenPaths {
    this.#paths ??= resolvePaths({
      home: this.string("home"),
      env: (k) => Deno.env.get(k),
      cwd: Deno.cwd(),
    });
    return this.#paths;
  }

  string(name: string): string | undefined {
    const v = this.flags[name];
    return typeof v === "string" ? v : undefined;
  }

  list(name: string): string[] {
    const v = this.flags[name];
    return Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
  }

  bool(name: string): boolean {
    return this.flags[name] === true;
  }

  /** `--home H` as it should appear in hints, so copy-pasted commands hit the same node. */
  get homeHint(): string {
    const h = this.string("home");
    return h ? ` --home ${h}` : "";
  }
}
