/** The error for a config file that does not parse or validate, listing every problem. */
import { DenError, Exit } from "../errors.ts";

export type ConfigIssue = {
  /** Key path as a user writes it, e.g. `node.listen`, `peers.1.name`; "" for the whole file. */
  path: string;
  /** 1-based line in the file, when known. */
  line?: number;
  /** What was there, in words: `an integer 7834`, `"localhost" (a string without a port)`. */
  found: string;
  /** What may be there instead. */
  allowed: string;
};

/** More lines than this help nobody; the rest are counted. */
const MAX_LISTED = 50;

/** `config.toml:12: node.listen: found …, allowed: …` */
export function formatIssue(file: string, issue: ConfigIssue): string {
  const where = issue.line === undefined ? file : `${file}:${issue.line}`;
  const key = issue.path === "" ? "" : ` ${issue.path}:`;
  return `${where}:${key} found ${issue.found}, allowed: ${issue.allowed}`;
}

export class ConfigError extends DenError {
  readonly issues: readonly ConfigIssue[];
  readonly file: string;

  /** `message` replaces the issue list, e.g. for TOML syntax errors that carry a code excerpt. */
  constructor(file: string, issues: ConfigIssue[], message?: string) {
    const listed = issues.slice(0, MAX_LISTED).map((i) => formatIssue(file, i));
    if (issues.length > MAX_LISTED) listed.push(`… and ${issues.length - MAX_LISTED} more`);
    super("config_invalid", message ?? listed.join("\n"), {
      exit: Exit.error,
      hint: `edit ${file}; docs/CONFIG.md lists every key and its allowed values`,
    });
    this.name = "ConfigError";
    this.issues = issues;
    this.file = file;
  }
}
