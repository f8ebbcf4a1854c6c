/** Checks on control-socket request parameters: the client is local but still untrusted input. */
import { DenError } from "../errors.ts";

export type Params = Record<string, unknown>;

export function stringParam(p: Params, key: string, max = 1024): string {
  const v = p[key];
  if (typeof v !== "string" || v.length === 0 || v.length > max) {
    throw new DenError("bad_request", `'${key}' must be a non-empty string`);
  }
  return v;
}

export function optionalString(p: Params, key: string, max?: number): string | undefined {
  return p[key] === undefined || p[key] === null ? undefined : stringParam(p, key, max);
}

export function intParam(p: Params, key: string, min: number, max: number): number {
  const v = p[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new DenError("bad_request", `'${key}' must be a whole number from ${min} to ${max}`);
  }
  return v;
}

export function stringList(p: Params, key: string, maxItems: number, maxLen = 1024): string[] {
  const v = p[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.length > maxItems) {
    throw new DenError("bad_request", `'${key}' must be a list of at most ${maxItems} strings`);
  }
  return v.map((_, i) => stringParam(v as unknown as Params, String(i), maxLen));
}
