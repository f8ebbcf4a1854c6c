/**
 * `deno run -A scripts/bench/primitives.ts`: the per-primitive choices in docs/PROTOCOL.md, each
 * pair measured side by side in one run (median µs per operation, and the ratio), and the cost of
 * one Argon2id derivation at the keystore's defaults (docs/KEYSTORE.md, docs/SECURITY.md).
 */
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { ARGON2_DEFAULT, argon2idKey, hkdfSha256 } from "../../src/crypto/kdf.ts";
import {
  mlkemDecapsulate,
  mlkemEncapsulate,
  mlkemEphemeral,
  mlkemEphemeralDecapsulate,
  mlkemFromSeed,
  x25519Ephemeral,
  x25519FromSeed,
} from "../../src/crypto/kem.ts";

const N = Number(Deno.env.get("BENCH_N") ?? 300);
const seed32 = crypto.getRandomValues(new Uint8Array(32));
const seed64 = crypto.getRandomValues(new Uint8Array(64));
const ikm = crypto.getRandomValues(new Uint8Array(64));
const salt = crypto.getRandomValues(new Uint8Array(32));
const info = new TextEncoder().encode("den bench");

/** Median µs per call, the two candidates interleaved so noise hits both alike. */
async function pair(label: string, chosen: () => unknown, other: () => unknown) {
  const a: number[] = [], b: number[] = [];
  for (let k = -20; k < N; k++) {
    let t = performance.now();
    await chosen();
    if (k >= 0) a.push(performance.now() - t);
    t = performance.now();
    await other();
    if (k >= 0) b.push(performance.now() - t);
  }
  const med = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)] * 1000;
  const [ma, mb] = [med(a), med(b)];
  console.log(
    `${label.padEnd(44)} chosen ${ma.toFixed(0).padStart(5)} µs   other ${
      mb.toFixed(0).padStart(5)
    } µs   other/chosen ${(mb / ma).toFixed(1)}×`,
  );
}

console.log(`deno ${Deno.version.deno}, ${Deno.build.target}, median of ${N}`);
await pair(
  "HKDF-SHA-256 (node:crypto vs @noble/hashes)",
  () => hkdfSha256(ikm, salt, info, 64),
  () => hkdf(nobleSha256, ikm, salt, info, 64),
);
await pair(
  "X25519 key pair from seed (node vs WebCrypto)",
  () => x25519Ephemeral(seed32),
  () => x25519FromSeed(seed32),
);
const { cipherText } = mlkemEncapsulate(mlkemFromSeed(seed64).publicKey);
await pair(
  "ML-KEM-768 keygen + decaps (WebCrypto vs noble)",
  async () => mlkemEphemeralDecapsulate((await mlkemEphemeral(seed64)).privateKey, cipherText),
  () => mlkemDecapsulate(cipherText, mlkemFromSeed(seed64).secretKey),
);

const runs: number[] = [];
for (let k = 0; k < 3; k++) {
  const t = performance.now();
  await argon2idKey("correct horse battery staple", salt.subarray(0, 16), ARGON2_DEFAULT);
  runs.push(performance.now() - t);
}
runs.sort((x, y) => x - y);
const p = ARGON2_DEFAULT;
console.log(
  `Argon2id ${p.memoryKiB / 1024} MiB, t=${p.iterations}, p=${p.parallelism} (hash-wasm): ` +
    `median ${(runs[1] / 1000).toFixed(2)} s per derivation (min ${(runs[0] / 1000).toFixed(2)} s)`,
);
