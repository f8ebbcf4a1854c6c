/**
 * Shared by the session tests, the session fuzzer and the benchmarks: identities, a fixed
 * "random" source for vectors, and a whole in-process handshake.
 */
import { type Identity, identityFromSeeds } from "../../src/identity/keys.ts";
import {
  type Established,
  type HandshakeConfig,
  InitiatorHandshake,
  ResponderHandshake,
} from "../../src/session/handshake.ts";

/**
 * X25519 public keys that make the shared secret public (RFC 7748 §6.1): the small-order points
 * and their non-canonical encodings. Every key agreement must refuse them.
 */
export const X25519_LOW_ORDER_POINTS: readonly string[] = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

/** A team id made of one repeated hex digit, e.g. team("2") = "22…2" (64 characters). */
export function team(digit: string): string {
  return digit.repeat(64);
}

/**
 * The documented test "randomness": call k (1, 2, 3, …) returns n bytes all equal to base + k.
 * Never use anything like it outside tests.
 */
export function fixedRandom(base: number): (n: number) => Uint8Array {
  let calls = 0;
  return (n) => new Uint8Array(n).fill((base + ++calls) & 0xff);
}

/** Seeds of consecutive bytes from `first`: ed25519 (32), x25519 (32), ML-KEM (64). */
export function consecutiveSeeds(first: number) {
  const run = (start: number, n: number) =>
    Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
  return { ed25519: run(first, 32), x25519: run(first + 32, 32), mlkem: run(first + 64, 64) };
}

/** The vector identities of docs/PROTOCOL.md: alice (seeds 00..7f) and bob (seeds 80..ff). */
export async function vectorIdentities(): Promise<{ alice: Identity; bob: Identity }> {
  return {
    alice: await identityFromSeeds("alice", consecutiveSeeds(0x00)),
    bob: await identityFromSeeds("bob", consecutiveSeeds(0x80)),
  };
}

export interface HandshakeRun {
  m1: Uint8Array;
  m2: Uint8Array;
  m3: Uint8Array;
  initiator: Established;
  responder: Established;
}

/** A complete handshake between two configs, in process. */
export async function runHandshake(
  initiatorCfg: HandshakeConfig,
  responderCfg: HandshakeConfig,
): Promise<HandshakeRun> {
  const i = new InitiatorHandshake(initiatorCfg);
  const r = new ResponderHandshake(responderCfg);
  const m1 = await i.start();
  const m2 = await r.respond(m1);
  const { reply: m3, established: initiator } = await i.finish(m2);
  const responder = await r.finish(m3);
  return { m1, m2, m3, initiator, responder };
}
