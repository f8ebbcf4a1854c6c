/** Copy-pasteable shell words for hints and printed commands (POSIX sh quoting). */

/** `s` as is when it holds no shell metacharacters, else in single quotes. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+,=-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** A command line a shell splits back into exactly `argv`. */
export function shellLine(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}
