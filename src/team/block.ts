/**
 * Team-chain blocks: a validated body together with the signed record that carries it. Making,
 * decoding and the join proof live here; what a block means for the team is state.ts's job.
 */
import { fromBase64, toBase64 } from "../crypto/encoding.ts";
import { ed25519Sign, type Ed25519Verifier } from "../crypto/sign.ts";
import { fingerprint } from "../identity/fingerprint.ts";
import type { Identity } from "../identity/keys.ts";
import {
  decodeRecord,
  recordJson,
  RecordKind,
  signedMessage,
  type SignedRecord,
  signRecord,
} from "../wire/signed_record.ts";
import { TeamError } from "./error.ts";
import { parseBlockBody } from "./schema.ts";
import {
  type BlockBody,
  DEFAULT_POLICY,
  joinProofMessage,
  type MemberInfo,
  type MemberKeys,
} from "./types.ts";

export { TeamError };

export interface Block {
  /** The record hash: the block's id, and for the genesis the team id. */
  hash: string;
  body: BlockBody;
  record: SignedRecord;
}

/** Validates `body` (TeamError "malformed" if it breaks a rule), then signs it. */
export async function createBlock(signing: CryptoKey, body: BlockBody): Promise<Block> {
  const clean = parseBlockBody(body);
  const record = await signRecord(RecordKind.teamBlock, clean, signing);
  return { hash: record.hash, body: clean, record };
}

/**
 * Decodes a block as received or stored: layout (RecordError: "truncated", "too_large", "version",
 * "kind", "malformed") and schema (TeamError "malformed"). The signature is checked by TeamChain,
 * which knows the author's key.
 */
export function parseBlock(bytes: Uint8Array): Block {
  const record = decodeRecord(bytes, RecordKind.teamBlock);
  const body = parseBlockBody(recordJson(record));
  return { hash: record.hash, body, record };
}

/** Checks the record's signature against `ed25519` (raw 32-byte public key). */
export function verifyBlockSignature(
  block: Block,
  ed25519: Uint8Array,
  verifier: Ed25519Verifier,
): Promise<boolean> {
  const msg = signedMessage(RecordKind.teamBlock, block.record.body);
  return verifier.verify(ed25519, msg, block.record.signature);
}

export function memberInfoOf(identity: Identity, addresses: string[]): MemberInfo {
  const pub = identity.publicKeys;
  return {
    name: identity.name,
    fingerprint: fingerprint(pub),
    keys: {
      ed25519: toBase64(pub.ed25519),
      x25519: toBase64(pub.x25519),
      mlkem768: toBase64(pub.mlkem768),
    },
    addresses: [...addresses],
  };
}

/** The raw Ed25519 public key of a member (validated when its block was parsed). */
export function ed25519Of(keys: MemberKeys): Uint8Array {
  return fromBase64(keys.ed25519);
}

/** A new team: its creator is the only member and admin; the policy is a majority of admins. */
export function createGenesis(
  identity: Identity,
  name: string,
  addresses: string[],
  ts: number,
): Promise<Block> {
  const member = memberInfoOf(identity, addresses);
  return createBlock(identity.signing, {
    v: 1,
    team: "",
    author: member.fingerprint,
    parents: [],
    ts,
    type: "genesis",
    name,
    member,
    policy: { ...DEFAULT_POLICY },
  });
}

/** The joiner's proof for a member_added block: base64 signature by the invite private key. */
export async function signJoinProof(
  inviteKey: CryptoKey,
  team: string,
  proposal: string,
  memberFp: string,
): Promise<string> {
  return toBase64(await ed25519Sign(inviteKey, joinProofMessage(team, proposal, memberFp)));
}

/** Never throws: a malformed key or signature is simply not a valid proof. */
export async function verifyJoinProof(
  verifier: Ed25519Verifier,
  inviteKey: string,
  sig: string,
  team: string,
  proposal: string,
  memberFp: string,
): Promise<boolean> {
  try {
    const msg = joinProofMessage(team, proposal, memberFp);
    return await verifier.verify(fromBase64(inviteKey), msg, fromBase64(sig));
  } catch {
    return false;
  }
}
