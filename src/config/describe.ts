/** Words for config values and key paths, as they appear in validation messages. */

/** Long strings are cut: a message should point at the problem, not echo the file back. */
const MAX_SHOWN = 60;
const BARE_KEY = /^[A-Za-z0-9_-]+$/;

/** A string as TOML/JSON would write it, shortened if long. */
export function quote(s: string): string {
  const short = s.length > MAX_SHOWN ? `${s.slice(0, MAX_SHOWN)}…` : s;
  return JSON.stringify(short);
}

export function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** A float the way TOML writes it, so `1.0` is not shown as the integer `1`. */
function floatText(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  return Number.isInteger(v) && Math.abs(v) < 1e15 ? `${v}.0` : String(v);
}

/** What a parsed TOML value is, e.g. `an integer 7834`, `a string "x"`, `a table`. */
export function describe(v: unknown): string {
  switch (typeof v) {
    case "string":
      return `a string ${quote(v)}`;
    case "bigint":
      return `an integer ${v}`;
    case "number":
      return `a float ${floatText(v)}`;
    case "boolean":
      return `a boolean ${v}`;
  }
  if (v instanceof Date) return `a date ${v.toISOString()}`;
  if (Array.isArray(v)) return v.length === 0 ? "an empty array" : "an array";
  if (isTable(v)) return "a table";
  return "nothing";
}

/**
 * `node.listen`, `peers.1.name` (array elements by 0-based index, as `den init` maps them back
 * to flags), `networks."odd key"`.
 */
export function showPath(path: readonly (string | number)[]): string {
  return path.map((seg) => typeof seg === "number" || BARE_KEY.test(seg) ? String(seg) : quote(seg))
    .join(".");
}
