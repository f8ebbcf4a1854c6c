/**
 * Which AEAD for session records, measured: seal + open of 1400-byte payloads (a VPN packet) for
 * each candidate in the same run (node:crypto and @noble/ciphers ChaCha20-Poly1305, WebCrypto
 * AES-256-GCM and ChaCha20-Poly1305), interleaved in rounds so machine noise hits them alike, with
 * ratios to the chosen one (node:crypto ChaCha20-Poly1305), and the record layer on top of it.
 * The handshake is measured by session.ts.
 *
 *   deno run -A scripts/bench/aead.ts        (BENCH_ROUNDS, default 7; BENCH_ROUND_MS, 300)
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { chachaOpen, chachaSeal } from "../../src/crypto/aead.ts";
import { RecordReceiver, RecordSender } from "../../src/session/record.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 7);
const ROUND_MS = Number(Deno.env.get("BENCH_ROUND_MS") ?? 300);
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
