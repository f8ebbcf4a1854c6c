/**
 * Values in systemd unit files. systemd expands `%` specifiers in most settings and `$VAR` in
 * ExecStart, splits words on whitespace and unquotes "…" with C escapes; a newline would end the
 * setting and start a new one. So: control characters are refused, `%` becomes `%%`, `$` becomes
 * `$$` in ExecStart, and words with blanks, quotes, backslashes or `;` are double-quoted.
 */
import { DenError, Exit } from "../errors.ts";

// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

/** Throws when `value` holds a character that cannot be written into a unit or plist. */
export function rejectControlChars(value: string, what: string): string {
  if (CONTROL.test(value)) {
    throw new DenError(
      "service_bad_value",
      `${what} ${JSON.stringify(value)} contains a control character (such as a newline), ` +
        "which cannot be written into a service definition",
      { exit: Exit.usage, hint: "use a path or value without control characters" },
    );
  }
  return value;
}

/** `%` → `%%`, so systemd does not read specifiers. */
export function escapeSpecifiers(s: string): string {
  return s.replaceAll("%", "%%");
}

/** One word as systemd splits them: double-quoted when it must be, `"` and `\` escaped inside. */
export function quoteWord(s: string): string {
  if (s !== "" && !/[\s"'\\;]/.test(s)) return s;
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** One literal ExecStart argument. */
export function execWord(s: string, what: string): string {
  rejectControlChars(s, what);
  return quoteWord(escapeSpecifiers(s.replaceAll("$", () => "$$")));
}

/** The value of one `Environment=` line: `KEY=VALUE`, quoted as a whole when needed. */
export function environmentValue(key: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
    throw new DenError("service_bad_value", `${JSON.stringify(key)} is not a variable name`);
  }
  rejectControlChars(value, `the value of ${key}`);
  return quoteWord(escapeSpecifiers(`${key}=${value}`));
}

/** A space-separated path list (ReadWritePaths=); `optional` paths get systemd's `-` prefix. */
export function pathList(paths: readonly string[], optional: readonly string[] = []): string {
  const words = [
    ...paths.map((p) => rejectControlChars(p, "the path")),
    ...optional.map((p) => "-" + rejectControlChars(p, "the path")),
  ];
  return words.map((w) => quoteWord(escapeSpecifiers(w))).join(" ");
}

/**
 * `ID:PATH` for LoadCredential=. systemd takes the rest of the line after `ID:` literally (no
 * unquoting), so only `%` is escaped; surrounding blanks would be trimmed and are refused.
 */
export function credentialValue(id: string, path: string): string {
  rejectControlChars(path, "the credential file");
  if (path.trim() !== path) {
    throw new DenError(
      "service_bad_value",
      `the credential file ${JSON.stringify(path)} starts or ends with a blank, which systemd ` +
        "would drop",
      { exit: Exit.usage, hint: "rename the file without leading or trailing blanks" },
    );
  }
  return `${id}:${escapeSpecifiers(path)}`;
}
