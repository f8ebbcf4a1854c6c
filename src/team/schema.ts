/**
 * Strict validation of block bodies: exact field sets, types and bounds. Everything a peer sends
 * passes through here before anything else looks at it, and the result is rebuilt field by field
 * in one fixed order, so createBlock writes the same JSON for the same content.
 */
import { fromBase64 } from "../crypto/encoding.ts";
import { fingerprint } from "../identity/fingerprint.ts";
import { PUBLIC_KEY_BYTES } from "../identity/keys.ts";
import { TeamError } from "./error.ts";
import {
  BLOCK_TYPES,
  BLOCK_VERSION,
  type BlockBody,
  type BlockCommon,
  type BlockContent,
  type BlockType,
  isEnvName,
  isMemberName,
  isTeamName,
  MAX_ADDRESS_CHARS,
  MAX_ADDRESSES,
  MAX_ENVS,
  MAX_PARENTS,
  MAX_POLICY_COUNT,
  type MemberInfo,
  type Policy,
  type ProposalBody,
  type Role,
} from "./types.ts";

type Obj = Record<string, unknown>;

const HASH = /^[0-9a-f]{64}$/;
// 52 base32 characters carry 260 bits; the last 4 must be zero, so the last one is 'a' or 'q'.
const FINGERPRINT = /^[a-z2-7]{51}[aq]$/;
// Printable ASCII without spaces: addresses end up in logs and dial calls, never parsed here.
const ADDRESS = /^[\x21-\x7e]+$/;
const SIGNATURE_BYTES = 64;

export function isBlockHash(v: unknown): v is string {
  return typeof v === "string" && HASH.test(v);
}

export function isFingerprint(v: unknown): v is string {
  return typeof v === "string" && FINGERPRINT.test(v);
}

function malformed(path: string, what: string): never {
  throw new TeamError("malformed", `block field ${path} ${what}`);
}

/** A plain JSON object with exactly `keys` (unknown fields are refused, not ignored). */
function object(v: unknown, path: string, keys: readonly string[]): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) malformed(path, "is not an object");
  const o = v as Obj;
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) {
      malformed(path, `has an unknown field ${JSON.stringify(k.slice(0, 40))}`);
    }
  }
  for (const k of keys) if (!Object.hasOwn(o, k)) malformed(path, `lacks the field "${k}"`);
  return o;
}

function string(v: unknown, path: string, ok: (s: string) => boolean, what: string): string {
  if (typeof v !== "string") malformed(path, "is not a string");
  if (!ok(v)) malformed(path, `is not ${what}`);
  return v;
}

function array(v: unknown, path: string, min: number, max: number): unknown[] {
  if (!Array.isArray(v)) malformed(path, "is not an array");
  if (v.length < min || v.length > max) malformed(path, `must have ${min}..${max} entries`);
  return v;
}

function timestamp(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    malformed(path, "is not a whole number of milliseconds ≥ 0");
  }
  return v;
}

function hash(v: unknown, path: string): string {
  return string(v, path, (s) => HASH.test(s), "a block hash (64 lowercase hex characters)");
}

function fp(v: unknown, path: string): string {
  return string(v, path, (s) => FINGERPRINT.test(s), "a fingerprint");
}

function role(v: unknown, path: string): Role {
  if (v !== "admin" && v !== "member") malformed(path, `is not "admin" or "member"`);
  return v;
}

function base64Key(v: unknown, path: string, bytes: number): Uint8Array {
  // Bound the text before decoding it.
  const s = string(v, path, (s) => s.length === Math.ceil(bytes / 3) * 4, `${bytes} bytes`);
  try {
    const out = fromBase64(s);
    if (out.length === bytes) return out;
  } catch {
    // reported below
  }
  return malformed(path, `is not canonical base64 of ${bytes} bytes`);
}

function distinct(list: string[], path: string): string[] {
  if (new Set(list).size !== list.length) malformed(path, "lists an entry twice");
  return list;
}

export function parseAddresses(v: unknown, path = "addresses"): string[] {
  const list = array(v, path, 0, MAX_ADDRESSES).map((a, i) =>
    string(
      a,
      `${path}[${i}]`,
      (s) => s.length <= MAX_ADDRESS_CHARS && ADDRESS.test(s),
      `1..${MAX_ADDRESS_CHARS} printable characters without spaces`,
    )
  );
  return distinct(list, path);
}

export function parseEnvs(v: unknown, path = "envs"): string[] {
  const list = array(v, path, 0, MAX_ENVS).map((e, i) =>
    string(e, `${path}[${i}]`, isEnvName, "an environment name")
  );
  return distinct(list, path);
}

export function parsePolicy(v: unknown, path = "policy"): Policy {
  const kind = (v as Obj | null)?.type;
  if (kind === "majority") {
    object(v, path, ["type"]);
    return { type: "majority" };
  }
  if (kind === "count") {
    const o = object(v, path, ["type", "n"]);
    if (!Number.isInteger(o.n) || (o.n as number) < 1 || (o.n as number) > MAX_POLICY_COUNT) {
      malformed(`${path}.n`, `is not a whole number 1..${MAX_POLICY_COUNT}`);
    }
    return { type: "count", n: o.n as number };
  }
  return malformed(`${path}.type`, `is not "majority" or "count"`);
}

/** Checks the keys decode to the right sizes and hash to the claimed fingerprint. */
export function parseMemberInfo(v: unknown, path = "member"): MemberInfo {
  const o = object(v, path, ["name", "fingerprint", "keys", "addresses"]);
  const name = string(o.name, `${path}.name`, isMemberName, "a member name");
  const claimed = fp(o.fingerprint, `${path}.fingerprint`);
  const k = object(o.keys, `${path}.keys`, ["ed25519", "x25519", "mlkem768"]);
  const pub = {
    ed25519: base64Key(k.ed25519, `${path}.keys.ed25519`, PUBLIC_KEY_BYTES.ed25519),
    x25519: base64Key(k.x25519, `${path}.keys.x25519`, PUBLIC_KEY_BYTES.x25519),
    mlkem768: base64Key(k.mlkem768, `${path}.keys.mlkem768`, PUBLIC_KEY_BYTES.mlkem768),
  };
  if (fingerprint(pub) !== claimed) {
    malformed(`${path}.fingerprint`, "does not match the member's keys");
  }
  return {
    name,
    fingerprint: claimed,
    keys: {
      ed25519: k.ed25519 as string,
      x25519: k.x25519 as string,
      mlkem768: k.mlkem768 as string,
    },
    addresses: parseAddresses(o.addresses, `${path}.addresses`),
  };
}

function parseProposal(v: unknown, path = "proposal"): ProposalBody {
  const kind = (v as Obj | null)?.kind;
  switch (kind) {
    case "invite": {
      const o = object(v, path, ["kind", "role", "envs", "invite_key", "expires"]);
      base64Key(o.invite_key, `${path}.invite_key`, PUBLIC_KEY_BYTES.ed25519);
      return {
        kind,
        role: role(o.role, `${path}.role`),
        envs: parseEnvs(o.envs, `${path}.envs`),
        invite_key: o.invite_key as string,
        expires: timestamp(o.expires, `${path}.expires`),
      };
    }
    case "remove": {
      const o = object(v, path, ["kind", "member"]);
      return { kind, member: fp(o.member, `${path}.member`) };
    }
    case "role": {
      const o = object(v, path, ["kind", "member", "role"]);
      return { kind, member: fp(o.member, `${path}.member`), role: role(o.role, `${path}.role`) };
    }
    case "policy": {
      const o = object(v, path, ["kind", "policy"]);
      return { kind, policy: parsePolicy(o.policy, `${path}.policy`) };
    }
  }
  return malformed(`${path}.kind`, `is not "invite", "remove", "role" or "policy"`);
}

const COMMON_KEYS = ["v", "team", "author", "parents", "ts", "type"] as const;
const CONTENT_KEYS: Record<BlockType, readonly string[]> = {
  genesis: ["name", "member", "policy"],
  propose: ["proposal"],
  approve: ["proposal"],
  reject: ["proposal"],
  member_added: ["proposal", "member", "invite_sig"],
  member_left: [],
  grant: ["member", "env"],
  revoke: ["member", "env"],
  addresses: ["addresses"],
};

function parseContent(type: BlockType, o: Obj): BlockContent {
  switch (type) {
    case "genesis":
      return {
        type,
        name: string(o.name, "name", isTeamName, "a team name (a-z 0-9 _ -, at most 32)"),
        member: parseMemberInfo(o.member),
        policy: parsePolicy(o.policy),
      };
    case "propose":
      return { type, proposal: parseProposal(o.proposal) };
    case "approve":
    case "reject":
      return { type, proposal: hash(o.proposal, "proposal") };
    case "member_added":
      base64Key(o.invite_sig, "invite_sig", SIGNATURE_BYTES);
      return {
        type,
        proposal: hash(o.proposal, "proposal"),
        member: parseMemberInfo(o.member),
        invite_sig: o.invite_sig as string,
      };
    case "member_left":
      return { type };
    case "grant":
    case "revoke":
      return {
        type,
        member: fp(o.member, "member"),
        env: string(o.env, "env", isEnvName, "an environment name"),
      };
    case "addresses":
      return { type, addresses: parseAddresses(o.addresses) };
  }
}

/** Validates a decoded JSON body; throws TeamError("malformed") naming the first bad field. */
export function parseBlockBody(v: unknown): BlockBody {
  const type = (v as Obj | null)?.type;
  if (typeof type !== "string" || !(BLOCK_TYPES as readonly string[]).includes(type)) {
    const shown = typeof type === "string" ? JSON.stringify(type.slice(0, 40)) : String(type);
    throw new TeamError("malformed", `unknown block type ${shown}`);
  }
  const t = type as BlockType;
  const o = object(v, "body", [...COMMON_KEYS, ...CONTENT_KEYS[t]]);
  if (o.v !== BLOCK_VERSION) malformed("v", `is not ${BLOCK_VERSION}`);
  const genesis = t === "genesis";
  const parents = array(o.parents, "parents", genesis ? 0 : 1, genesis ? 0 : MAX_PARENTS)
    .map((p, i) => hash(p, `parents[${i}]`));
  for (let i = 1; i < parents.length; i++) {
    // One order (and no repeats), so the same parents always give the same bytes.
    if (parents[i - 1] >= parents[i]) malformed("parents", "are not sorted and distinct");
  }
  const common: BlockCommon = {
    v: BLOCK_VERSION,
    team: genesis
      ? string(o.team, "team", (s) => s === "", `"" (a genesis has no team id yet)`)
      : hash(o.team, "team"),
    author: fp(o.author, "author"),
    parents,
    ts: timestamp(o.ts, "ts"),
  };
  return { ...common, ...parseContent(t, o) } as BlockBody;
}
