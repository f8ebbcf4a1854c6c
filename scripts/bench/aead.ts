/**
 * Which AEAD for session records, measured: seal + open of 1400-byte payloads (a VPN packet) for
 * each candidate in the same run (node:crypto and @noble/ciphers ChaCha20-Poly1305, WebCrypto
 * AES-256-GCM and ChaCha20-Poly1305), interleaved in rounds so machine noise hits them alike, with
 * ratios to the chosen one (node:crypto ChaCha20-Poly1305). Then the record layer on top of it,
 * and the full three-message handshake in process (median of BENCH_HANDSHAKES, default 200).
 *
 *   deno run -A scripts/bench/aead.ts        (BENCH_ROUNDS, default 7; BENCH_ROUND_MS, 300)
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { chachaOpen, chachaSeal } from "../../src/crypto/aead.ts";
import { generateIdentity } from "../../src/identity/keys.ts";
import { InitiatorHandshake, ResponderHandshake } from "../../src/session/handshake.ts";
import { RecordReceiver, RecordSender } from "../../src/session/record.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 7);
const ROUND_MS = Number(Deno.env.get("BENCH_ROUND_MS") ?? 300);
const HANDSHAKES = Number(Deno.env.get("BENCH_HANDSHAKES") ?? 200);
const SIZE = 1400;

const key = crypto.getRandomValues(new Uint8Array(32));
const nonce = crypto.getRandomValues(new Uint8Array(12));
const aad = crypto.getRandomValues(new Uint8Array(12));
const payload = crypto.getRandomValues(new Uint8Array(SIZE));
const aesKey = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt", "decrypt"]);
const aesParams = { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 };
const chachaAlg = { name: "ChaCha20-Poly1305" };
const chachaKey = await crypto.subtle.importKey("raw-secret", key, chachaAlg, false, [
  "encrypt",
  "decrypt",
]);
const chachaParams = { ...chachaAlg, iv: nonce, additionalData: aad };

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`${what}: round trip failed`);
}

interface Candidate {
  name: string;
  /** One seal + open; returns whether the plaintext came back. */
  op: () => boolean | Promise<boolean>;
}

const sender = new RecordSender(key, { now: 0 });
const receiver = new RecordReceiver(key);

const candidates: Candidate[] = [
  {
    name: "node:crypto ChaCha20-Poly1305 (chosen)",
    op: () => chachaOpen(key, nonce, chachaSeal(key, nonce, payload, aad), aad).length === SIZE,
  },
  {
    name: "@noble/ciphers ChaCha20-Poly1305",
    op: () => {
      const sealed = chacha20poly1305(key, nonce, aad).encrypt(payload);
      return chacha20poly1305(key, nonce, aad).decrypt(sealed).length === SIZE;
    },
  },
  {
    name: "WebCrypto AES-256-GCM (awaited)",
    op: async () => {
      const sealed = await crypto.subtle.encrypt(aesParams, aesKey, payload);
      return (await crypto.subtle.decrypt(aesParams, aesKey, sealed)).byteLength === SIZE;
    },
  },
  {
    // Not in PLATFORM.md's table ("not supported"): Deno 2.9.6 has it (Modern Algorithms draft).
    name: "WebCrypto ChaCha20-Poly1305 (awaited)",
    op: async () => {
      const sealed = await crypto.subtle.encrypt(chachaParams, chachaKey, payload);
      return (await crypto.subtle.decrypt(chachaParams, chachaKey, sealed)).byteLength === SIZE;
    },
  },
  {
    name: "record layer (seal + open, chosen AEAD)",
    op: () => receiver.open(sender.seal(1, payload, 0)).payload.length === SIZE,
  },
];

async function rate(c: Candidate, ms: number): Promise<number> {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < 32; i++) check(await c.op(), c.name);
    n += 32;
    t = performance.now();
  }
  return n / ((t - t0) / 1000);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

console.log(
  `AEAD seal+open of ${SIZE}-byte payloads, ${ROUNDS} interleaved rounds of ${ROUND_MS} ms, ` +
    `deno ${Deno.version.deno}, ${Deno.build.target}, ${navigator.hardwareConcurrency} cores`,
);
for (const c of candidates) await rate(c, 100); // warm up the JIT for all alike
const results = new Map<string, number[]>(candidates.map((c) => [c.name, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const c of candidates) results.get(c.name)!.push(await rate(c, ROUND_MS));
}
const chosen = median(results.get(candidates[0].name)!);
for (const c of candidates) {
  const xs = results.get(c.name)!;
  const m = median(xs);
  const range = `${(Math.min(...xs) / 1000).toFixed(0)}k–${(Math.max(...xs) / 1000).toFixed(0)}k`;
  console.log(
    `  ${c.name.padEnd(42)} ${(m / 1000).toFixed(1).padStart(6)}k ops/s  ` +
      `(${range})  ${(m / chosen).toFixed(2)}× chosen  ${(m * SIZE * 2 / 1e6).toFixed(0)} MB/s`,
  );
}

// ---- handshake ----
const alice = await generateIdentity("alice");
const bob = await generateIdentity("bob");
const teams = ["1", "2"].map((d) => d.repeat(64));
const steps: number[][] = [[], [], [], [], []];
for (let n = -20; n < HANDSHAKES; n++) { // the first 20 warm up
  const i = new InitiatorHandshake({ identity: alice, teams, now: Date.now });
  const r = new ResponderHandshake({ identity: bob, teams, now: Date.now });
  const t0 = performance.now();
  const m1 = await i.start();
  const t1 = performance.now();
  const m2 = await r.respond(m1);
  const t2 = performance.now();
  const { reply } = await i.finish(m2);
  const t3 = performance.now();
  await r.finish(reply);
  const t4 = performance.now();
  if (n < 0) continue;
  steps[0].push(t1 - t0);
  steps[1].push(t2 - t1);
  steps[2].push(t3 - t2);
  steps[3].push(t4 - t3);
  steps[4].push(t4 - t0);
}
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)];
const ms = (x: number) => `${x.toFixed(2)} ms`;
console.log(
  `handshake (3 messages, both sides in process, ${HANDSHAKES} runs): median ` +
    `${ms(median(steps[4]))}, p90 ${ms(p90(steps[4]))}, min ${ms(Math.min(...steps[4]))}`,
);
console.log(
  `  median per step: initiator start ${ms(median(steps[0]))}, responder respond ` +
    `${ms(median(steps[1]))}, initiator finish ${ms(median(steps[2]))}, responder finish ` +
    `${ms(median(steps[3]))}`,
);
