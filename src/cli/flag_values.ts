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

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration like 90s, 30m, 24h or 7d, in ms; `fallback` when the flag is absent. */
export function durationFlag(
  ctx: CommandContext,
  flag: string,
  fallback: number,
  maxMs: number,
): number {
  const text = ctx.string(flag);
  if (text === undefined) return fallback;
  const m = /^([0-9]{1,6})([smhd])$/.exec(text);
  const ms = m ? Number(m[1]) * DURATION_UNITS[m[2]] : NaN;
  if (!m || ms < 60_000 || ms > maxMs) {
    throw usageError(
      `--${flag}: found "${text}", allowed: a duration from 1m to ${maxMs / 86_400_000}d ` +
        "such as 30m, 24h or 7d",
    );
  }
  return ms;
}
