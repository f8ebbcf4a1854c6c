/**
 * Invite codes: everything a fresh node needs to join a team, signed by the inviter.
 *
 *   code   = "den1" ‖ base64url(payload ‖ signature)
 *   payload = version u8 (1) ‖ team 32 ‖ proposal 32 ‖ inviter fingerprint 32 ‖ inviter Ed25519
 *             public key 32 ‖ invite seed 32 ‖ expires u64be (ms) ‖ role u8 (0 member, 1 admin) ‖
 *             team name ‖ inviter name ‖ envs ‖ addresses ‖ relay URLs
 *   strings are u8 length ‖ UTF-8; lists are u8 count ‖ strings (URLs: u16be length)
 *   signature = Ed25519(inviter, "den-invite-v1\0" ‖ payload)
 *
 * The seed is the one-time secret: its Ed25519 public key is in the approved invite proposal, so
 * only the holder of the code can sign the join proof. The signature makes any edit or cut of a
 * code detectable before anything is sent; the joiner pins the fingerprint, so a code signed by
 * anyone but the real inviter leads to a refused session.
 */
import {
  concatBytes,
  fromBase32,
  fromBase64Url,
  fromHex,
  fromUtf8,
  toBase32,
  toBase64Url,
  toHex,
  utf8,
} from "../crypto/encoding.ts";
import { ed25519Sign, ed25519Verify } from "../crypto/sign.ts";
import { DenError, Exit } from "../errors.ts";
import type { Role } from "./types.ts";

export const INVITE_PREFIX = "den1";
const VERSION = 1;
const SIGN_DOMAIN = utf8("den-invite-v1\0");
const MAX_CODE_CHARS = 4096;
const MAX_LIST = 8;

export interface InviteCode {
  team: string;
  teamName: string;
  proposal: string;
  inviter: { fingerprint: string; name: string; ed25519: Uint8Array };
  seed: Uint8Array;
  expires: number;
  role: Role;
  envs: string[];
  addresses: string[];
  relays: string[];
}

export async function encodeInvite(code: InviteCode, signing: CryptoKey): Promise<string> {
  const payload = encodePayload(code);
  const sig = await ed25519Sign(signing, concatBytes(SIGN_DOMAIN, payload));
  return INVITE_PREFIX + toBase64Url(concatBytes(payload, sig));
}

/**
 * Decodes and checks the signature and expiry. Errors say which check failed: `invite_malformed`
 * (not a code, or cut short), `invite_forged` (signature), `invite_expired`.
 */
export async function decodeInvite(text: string, now: number): Promise<InviteCode> {
  const trimmed = text.trim().replace(/\s+/g, "");
  if (!trimmed.startsWith(INVITE_PREFIX) || trimmed.length > MAX_CODE_CHARS) {
    throw malformed(`it does not start with "${INVITE_PREFIX}"`);
  }
  let bytes: Uint8Array;
  try {
    bytes = fromBase64Url(trimmed.slice(INVITE_PREFIX.length));
  } catch {
    throw malformed("it contains characters that are not part of a code");
  }
  if (bytes.length < 64 + 1) throw malformed("it is cut short");
  const payload = bytes.subarray(0, bytes.length - 64);
  const sig = bytes.subarray(bytes.length - 64);
  let code: InviteCode;
  try {
    code = decodePayload(payload);
  } catch (err) {
    throw malformed(err instanceof Error ? err.message : "it is cut short");
  }
  if (!await ed25519Verify(code.inviter.ed25519, concatBytes(SIGN_DOMAIN, payload), sig)) {
    throw new DenError(
      "invite_forged",
      "this invite code's signature does not match its contents: it was altered or forged",
      { exit: Exit.verification, hint: "ask the inviter for the code again and copy it whole" },
    );
  }
  if (code.expires <= now) {
    throw new DenError(
      "invite_expired",
      `this invite code expired at ${new Date(code.expires).toISOString()}`,
      { exit: Exit.notAuthorized, hint: "ask a team admin for a new invite (den invite)" },
    );
  }
  return code;
}

function malformed(why: string): DenError {
  return new DenError("invite_malformed", `not a valid invite code: ${why}`, {
    exit: Exit.usage,
    hint: "copy the whole code printed by `den invite` (it starts with den1)",
  });
}

function encodePayload(c: InviteCode): Uint8Array {
  const expires = new Uint8Array(8);
  new DataView(expires.buffer).setBigUint64(0, BigInt(c.expires));
  return concatBytes(
    new Uint8Array([VERSION]),
    fromHex(c.team),
    fromHex(c.proposal),
    fromBase32(c.inviter.fingerprint),
    c.inviter.ed25519,
    c.seed,
    expires,
    new Uint8Array([c.role === "admin" ? 1 : 0]),
    str8(c.teamName),
    str8(c.inviter.name),
    list(c.envs, str8),
    list(c.addresses, str8),
    list(c.relays, str16),
  );
}

function str8(s: string): Uint8Array {
  const b = utf8(s);
  if (b.length > 255) throw new RangeError(`invite field too long: ${s.slice(0, 40)}…`);
  return concatBytes(new Uint8Array([b.length]), b);
}

function str16(s: string): Uint8Array {
  const b = utf8(s);
  if (b.length > 2048) throw new RangeError(`invite field too long: ${s.slice(0, 40)}…`);
  return concatBytes(new Uint8Array([b.length >> 8, b.length & 255]), b);
}

function list(items: string[], enc: (s: string) => Uint8Array): Uint8Array {
  const shown = items.slice(0, MAX_LIST);
  return concatBytes(new Uint8Array([shown.length]), ...shown.map(enc));
}

/** Reads the payload; throws on anything short, long or out of range. */
function decodePayload(p: Uint8Array): InviteCode {
  let at = 0;
  const take = (n: number): Uint8Array => {
    if (at + n > p.length) throw new Error("it is cut short");
    const out = p.slice(at, at + n);
    at += n;
    return out;
  };
  const str = (wide: boolean): string => {
    const len = wide ? (take(1)[0] << 8) | take(1)[0] : take(1)[0];
    try {
      return fromUtf8(take(len));
    } catch {
      throw new Error("a text field is not UTF-8");
    }
  };
  const strs = (wide: boolean): string[] => {
    const n = take(1)[0];
    if (n > MAX_LIST) throw new Error("a list is too long");
    return Array.from({ length: n }, () => str(wide));
  };
  if (take(1)[0] !== VERSION) throw new Error("it was made by an incompatible den version");
  const team = toHex(take(32));
  const proposal = toHex(take(32));
  const fingerprint = toBase32(take(32));
  const ed25519 = take(32);
  const seed = take(32);
  const expires = Number(new DataView(take(8).buffer).getBigUint64(0));
  const roleByte = take(1)[0];
  if (roleByte > 1) throw new Error("unknown role");
  const teamName = str(false);
  const name = str(false);
  const envs = strs(false);
  const addresses = strs(false);
  const relays = strs(true);
  if (at !== p.length) throw new Error("it has trailing bytes");
  if (!Number.isSafeInteger(expires)) throw new Error("expiry out of range");
  return {
    team,
    teamName,
    proposal,
    inviter: { fingerprint, name, ed25519 },
    seed,
    expires,
    role: roleByte === 1 ? "admin" : "member",
    envs,
    addresses,
    relays,
  };
}
