/** Checks of flag values shared by commands: each failure is a usage error (exit 2) saying why. */
import { DenError, Exit } from "../errors.ts";
import type { CommandContext } from "./context.ts";

export function usageError(
  message: string,
  hint = "the command's --help lists its flags and their values",
): DenError {
  return new DenError("usage", message, { exit: Exit.usage, hint });
}

/** A whole number 1..max, or undefined when the flag is absent. */
export function positiveIntFlag(
  ctx: CommandContext,
  flag: string,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const text = ctx.string(flag);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? "from 1" : `from 1 to ${max}`;
    throw usageError(`--${flag}: found "${text}", allowed: a whole number ${range}`);
  }
  return n;
}

/** One of `allowed`; `fallback` when the flag is absent. */
export function oneOfFlag<T extends string>(
  ctx: CommandContext,
  flag: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const v = ctx.string(flag) ?? fallback;
  if (!(allowed as readonly string[]).includes(v)) {
    throw usageError(`--${flag}: found "${v}", allowed: ${allowed.join(", ")}`);
  }
  return v as T;
}
