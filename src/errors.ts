/** Exit codes of the command contract (DESIGN.md §2). */
export const Exit = {
  ok: 0,
  error: 1,
  usage: 2,
  noDaemon: 3,
  notAuthorized: 4,
  verification: 5,
} as const;
export type ExitCode = (typeof Exit)[keyof typeof Exit];

/**
 * An error a user can act on: what was wrong (message), how to fix it (hint),
 * and the process exit code the CLI uses for it. `code` is a stable machine-readable name.
 */
export class DenError extends Error {
  readonly code: string;
  readonly exit: ExitCode;
  readonly hint?: string;

  constructor(code: string, message: string, opts: { exit?: ExitCode; hint?: string } = {}) {
    super(message);
    this.name = "DenError";
    this.code = code;
    this.exit = opts.exit ?? Exit.error;
    this.hint = opts.hint;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound;
}
