/**
 * The team chain's data model: block bodies as they appear in the signed JSON, their bounds, the
 * name validators other parts reuse, and the message an invite key signs to let someone join.
 * Protocol: docs/TEAMS.md.
 */
import { concatBytes, fromHex, utf8 } from "../crypto/encoding.ts";
import { validateName } from "../identity/keys.ts";

export type Role = "admin" | "member";

/** Public keys, standard base64. */
export interface MemberKeys {
  ed25519: string;
  x25519: string;
  mlkem768: string;
}

export interface MemberInfo {
  name: string;
  fingerprint: string;
  keys: MemberKeys;
  addresses: string[];
}

export type Policy = { type: "majority" } | { type: "count"; n: number };

export type ProposalBody =
  | {
    kind: "invite";
    role: Role;
    envs: string[];
    /** Base64 Ed25519 public key; its private half travels in the invite code. */
    invite_key: string;
    /** Milliseconds since the epoch. */
    expires: number;
  }
  | { kind: "remove"; member: string }
  | { kind: "role"; member: string; role: Role }
  | { kind: "policy"; policy: Policy };

export interface BlockCommon {
  v: 1;
  /** Hex team id (the genesis record's hash); "" in the genesis itself. */
  team: string;
  /** The author's fingerprint. */
  author: string;
  /** Sorted hex hashes of the blocks this one builds on; [] only in the genesis. */
  parents: string[];
  /** Milliseconds since the epoch, as the author's clock saw it. */
  ts: number;
}

export type BlockContent =
  | { type: "genesis"; name: string; member: MemberInfo; policy: Policy }
  | { type: "propose"; proposal: ProposalBody }
  | { type: "approve"; proposal: string }
  | { type: "reject"; proposal: string }
  | { type: "member_added"; proposal: string; member: MemberInfo; invite_sig: string }
  | { type: "member_left" }
  | { type: "grant"; member: string; env: string }
  | { type: "revoke"; member: string; env: string }
  | { type: "addresses"; addresses: string[] };

export type BlockBody = BlockCommon & BlockContent;
export type BlockType = BlockBody["type"];

export const BLOCK_VERSION = 1;
export const BLOCK_TYPES: readonly BlockType[] = [
  "genesis",
  "propose",
  "approve",
  "reject",
  "member_added",
  "member_left",
  "grant",
  "revoke",
  "addresses",
];

export const MAX_PARENTS = 16;
export const MAX_ENVS = 32;
export const MAX_ADDRESSES = 8;
export const MAX_ADDRESS_CHARS = 255;
export const MAX_POLICY_COUNT = 100;
export const DEFAULT_POLICY: Readonly<Policy> = Object.freeze({ type: "majority" });

const TEAM_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const ENV_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

/** A team name: lowercase, 1..32 characters, usable as a file or directory name. */
export function isTeamName(name: unknown): name is string {
  return typeof name === "string" && TEAM_NAME.test(name);
}

/** An environment name, e.g. "default", "staging", "prod.eu". */
export function isEnvName(name: unknown): name is string {
  return typeof name === "string" && ENV_NAME.test(name);
}

/** A member name follows the node-name rules (1..64 UTF-8 bytes, no control characters). */
export function isMemberName(name: unknown): name is string {
  if (typeof name !== "string") return false;
  try {
    validateName(name);
    return true;
  } catch {
    return false;
  }
}

const JOIN_DOMAIN = "den-join-v1\0";

/**
 * What the invite key signs for a joiner: bound to the team, the invite proposal and the joiner's
 * fingerprint, so a proof cannot be replayed for another team, invite or identity.
 */
export function joinProofMessage(team: string, proposal: string, memberFp: string): Uint8Array {
  return concatBytes(utf8(JOIN_DOMAIN), fromHex(team), fromHex(proposal), utf8(memberFp));
}
