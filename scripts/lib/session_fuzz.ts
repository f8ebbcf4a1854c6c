/**
 * A time-bounded fuzzer for the session layer, shared by tests/unit/session_fuzz_test.ts (a
 * couple of seconds) and scripts/bench/fuzz_session.ts (minutes). It feeds random and mutated
 * M1, M2, M3, identity blocks and records to real handshake and record objects and checks:
 *   - nothing but HandshakeError / RecordError is ever thrown;
 *   - no changed M2, M3 or record is ever accepted, and a changed M1 never yields a session.
 * Mutations come from a seeded PRNG, so a failure is reproducible from the seed it reports.
 */
import { prng } from "./prng.ts";
import { concatBytes, toHex } from "../../src/crypto/encoding.ts";
import { generateIdentity, type Identity } from "../../src/identity/keys.ts";
import { decodeIdentityBlock, MAX_HANDSHAKE_MESSAGE } from "../../src/session/codec.ts";
import { HandshakeError, RecordError } from "../../src/session/errors.ts";
import {
  type HandshakeConfig,
  InitiatorHandshake,
  ResponderHandshake,
} from "../../src/session/handshake.ts";
import { MAX_RECORD_BYTES, RecordReceiver, RecordSender } from "../../src/session/record.ts";
import { runHandshake, team } from "./session_fixtures.ts";

export type Target = "m1" | "m2" | "m3" | "block" | "record";
export const TARGETS: Target[] = ["m1", "m2", "m3", "block", "record"];

export interface FuzzReport {
  seed: number;
  iterations: number;
  /** Cases tried per target. */
  cases: Record<Target, number>;
  /** Errors seen, by class and reason, e.g. "HandshakeError:decrypt". */
  errors: Record<string, number>;
  /** Inputs accepted: only unchanged inputs and changed M1s (which then fail later). */
  accepted: number;
  elapsedMs: number;
}

/** Thrown when an invariant breaks; carries the seed and the offending input. */
export class FuzzFailure extends Error {
  constructor(message: string, readonly seed: number, readonly input: Uint8Array) {
    super(`${message} (seed ${seed}; input ${input.length} bytes: ${toHex(input.slice(0, 64))}…)`);
    this.name = "FuzzFailure";
  }
}

class Mutator {
  constructor(readonly rand: () => number) {}

  int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** One of several mutation kinds, applied 1-3 times. Never returns the input object. */
  mutate(input: Uint8Array, limit: number): Uint8Array {
    let m: Uint8Array = input.slice();
    const rounds = 1 + this.int(3);
    for (let r = 0; r < rounds; r++) {
      const kind = this.int(9);
      const at = m.length ? this.int(m.length) : 0;
      if (kind === 0 && m.length) m[at] ^= 1 << this.int(8); // bit flip
      else if (kind === 1 && m.length) m[at] = this.int(256); // random byte
      else if (kind === 2 && m.length) m[at] = [0, 0xff, 0x7f, 0x80, 1][this.int(5)]; // edge byte
      else if (kind === 3) m = m.slice(0, this.int(m.length + 1)); // truncate
      else if (kind === 4) m = concatBytes(m, this.bytes(1 + this.int(64))); // extend
      else if (kind === 5 && m.length) { // duplicate a slice in place
        const len = 1 + this.int(Math.min(64, m.length - at));
        m = concatBytes(m.slice(0, at), m.slice(at, at + len), m.slice(at));
      } else if (kind === 6 && m.length) { // delete a slice
        const len = 1 + this.int(Math.min(64, m.length - at));
        m = concatBytes(m.slice(0, at), m.slice(at + len));
      } else if (kind === 7 && m.length >= 2) { // u16 length/count field to an extreme
        const v = [0, 1, 0xff, 0x100, 0x101, 0xffff][this.int(6)];
        const p = Math.min(at, m.length - 2);
        m[p] = v >> 8;
        m[p + 1] = v & 0xff;
      } else if (kind === 8) m = this.bytes(this.int(Math.min(limit, m.length + 64) + 1));
    }
    return m.length > limit ? m.slice(0, limit) : m;
  }
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export interface FuzzOptions {
  /** Wall-clock budget. */
  ms: number;
  seed?: number;
  /** Relative weights of the targets (default: all equal). */
  weights?: Partial<Record<Target, number>>;
}

export async function fuzzSession(opts: FuzzOptions): Promise<FuzzReport> {
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 32);
  const mut = new Mutator(prng(seed));
  const now = Date.now();
  const alice = await generateIdentity("alice");
  const bob = await generateIdentity("bob");
  const cfg = (identity: Identity, teams: string[]): HandshakeConfig => ({
    identity,
    teams,
    now: () => now,
    rekey: { bytes: 4096, ms: 60_000 },
  });
  const icfg = cfg(alice, [team("1"), team("2")]);
  const rcfg = cfg(bob, [team("2")]);
  const report: FuzzReport = {
    seed,
    iterations: 0,
    cases: { m1: 0, m2: 0, m3: 0, block: 0, record: 0 },
    errors: {},
    accepted: 0,
    elapsedMs: 0,
  };

  // Seeds for mutation: a real exchange, an identity block, and a run of records.
  const base = await runHandshake(icfg, rcfg);
  const block = encodeBlockSample(base.m3);
  const sender = new RecordSender(new Uint8Array(32).fill(7), { now, rekey: { bytes: 200 } });
  const records = Array.from(
    { length: 16 },
    (_, i) => sender.seal(i, mut.bytes(mut.int(100)), now),
  );

  const weights = TARGETS.map((t) => opts.weights?.[t] ?? 1);
  const total = weights.reduce((a, b) => a + b, 0);
  const pick = (): Target => {
    let x = mut.rand() * total;
    for (const [i, t] of TARGETS.entries()) if ((x -= weights[i]) < 0) return t;
    return "record";
  };

  const expected = (input: Uint8Array, err: unknown): void => {
    if (err instanceof HandshakeError || err instanceof RecordError) {
      const key = `${err.name}:${err.reason}`;
      report.errors[key] = (report.errors[key] ?? 0) + 1;
      return;
    }
    throw new FuzzFailure(`unexpected exception ${String(err)}`, seed, input);
  };

  const start = performance.now();
  while (performance.now() - start < opts.ms) {
    const target = pick();
    report.cases[target]++;
    report.iterations++;
    if (target === "m1") {
      const i = new InitiatorHandshake(icfg);
      const m1 = await i.start();
      const input = mut.mutate(m1, MAX_HANDSHAKE_MESSAGE + 64);
      try {
        const m2 = await new ResponderHandshake(rcfg).respond(input);
        report.accepted++;
        // A changed M1 may be answered (nothing in it is authenticated yet), but the initiator
        // that sent the original must then refuse the answer.
        if (!same(input, m1)) {
          await i.finish(m2);
          throw new FuzzFailure("a session came out of a changed M1", seed, input);
        }
      } catch (err) {
        if (err instanceof FuzzFailure) throw err;
        expected(input, err);
      }
    } else if (target === "m2") {
      const i = new InitiatorHandshake(icfg);
      const m2 = await new ResponderHandshake(rcfg).respond(await i.start());
      const input = mut.mutate(m2, MAX_HANDSHAKE_MESSAGE + 64);
      try {
        await i.finish(input);
        if (!same(input, m2)) throw new FuzzFailure("a changed M2 was accepted", seed, input);
        report.accepted++;
      } catch (err) {
        if (err instanceof FuzzFailure) throw err;
        expected(input, err);
      }
    } else if (target === "m3") {
      const i = new InitiatorHandshake(icfg);
      const r = new ResponderHandshake(rcfg);
      const { reply } = await i.finish(await r.respond(await i.start()));
      const input = mut.mutate(reply, MAX_HANDSHAKE_MESSAGE + 64);
      try {
        await r.finish(input);
        if (!same(input, reply)) throw new FuzzFailure("a changed M3 was accepted", seed, input);
        report.accepted++;
      } catch (err) {
        if (err instanceof FuzzFailure) throw err;
        expected(input, err);
      }
    } else if (target === "block") {
      // The decrypted identity block, which the AEAD keeps out of reach of the other targets.
      const input = mut.mutate(block, MAX_HANDSHAKE_MESSAGE + 64);
      try {
        decodeIdentityBlock(input, "fuzzed identity block");
        report.accepted++;
      } catch (err) {
        expected(input, err);
      }
    } else {
      // A receiver that has opened the first k records gets a changed version of record k.
      const k = mut.int(records.length);
      const receiver = new RecordReceiver(new Uint8Array(32).fill(7));
      for (let j = 0; j < k; j++) receiver.open(records[j]);
      const input = mut.mutate(records[k], MAX_RECORD_BYTES + 64);
      try {
        receiver.open(input);
        if (!same(input, records[k])) {
          throw new FuzzFailure("a changed record was accepted", seed, input);
        }
        report.accepted++;
      } catch (err) {
        if (err instanceof FuzzFailure) throw err;
        expected(input, err);
      }
    }
  }
  report.elapsedMs = performance.now() - start;
  return report;
}

/**
 * A structurally valid identity block (keys, name, one team tag, signature bytes) shaped like
 * the one inside M3, built by hand since the real one is only ever seen decrypted.
 */
function encodeBlockSample(m3: Uint8Array): Uint8Array {
  const block = new Uint8Array(32 + 32 + 1184 + 1 + 64 + 2 + 32 * 2 + 64);
  block.set(m3.subarray(5, 5 + 1248), 0); // key-sized filler
  block[1248] = 5;
  block.set(new TextEncoder().encode("alice"), 1249);
  block[1313] = 0;
  block[1314] = 2;
  block.fill(0x10, 1315, 1347);
  block.fill(0x20, 1347, 1379);
  return block;
}
