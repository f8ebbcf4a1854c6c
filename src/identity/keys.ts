/** A node's identity: Ed25519 (signing), X25519 and ML-KEM-768 (key agreement), all from seeds. */
import { utf8 } from "../crypto/encoding.ts";
import { mlkemFromSeed, x25519FromSeed } from "../crypto/kem.ts";
import { randomBytes } from "../crypto/random.ts";
import { ed25519FromSeed } from "../crypto/sign.ts";
import { DenError, Exit } from "../errors.ts";

export interface PublicKeys {
  ed25519: Uint8Array; // 32
  x25519: Uint8Array; // 32
  mlkem768: Uint8Array; // 1184
}

/** The seeds are the whole secret: everything else is derived from them. */
export interface Seeds {
  ed25519: Uint8Array; // 32
  x25519: Uint8Array; // 32
  mlkem: Uint8Array; // 64 (d ‖ z)
}

export interface Identity {
  name: string;
  seeds: Seeds;
  publicKeys: PublicKeys;
  signing: CryptoKey;
  x25519: CryptoKey;
  mlkemSecret: Uint8Array;
}

export const SEED_BYTES = { ed25519: 32, x25519: 32, mlkem: 64 } as const;
export const PUBLIC_KEY_BYTES = { ed25519: 32, x25519: 32, mlkem768: 1184 } as const;
export const MAX_NAME_BYTES = 64;

export function generateIdentity(name: string): Promise<Identity> {
  const seeds: Seeds = {
    ed25519: randomBytes(SEED_BYTES.ed25519),
    x25519: randomBytes(SEED_BYTES.x25519),
    mlkem: randomBytes(SEED_BYTES.mlkem),
  };
  return identityFromSeeds(name, seeds);
}

/** Copies the seeds: the identity owns its own, which wipeIdentity zeroes. */
export async function identityFromSeeds(name: string, seeds: Seeds): Promise<Identity> {
  validateName(name);
  for (const k of ["ed25519", "x25519", "mlkem"] as const) {
    if (seeds[k].length !== SEED_BYTES[k]) {
      throw new RangeError(`${k} seed must be ${SEED_BYTES[k]} bytes`);
    }
  }
  const own: Seeds = {
    ed25519: seeds.ed25519.slice(),
    x25519: seeds.x25519.slice(),
    mlkem: seeds.mlkem.slice(),
  };
  const ed = await ed25519FromSeed(own.ed25519);
  const xk = await x25519FromSeed(own.x25519);
  const kem = mlkemFromSeed(own.mlkem);
  return {
    name,
    seeds: own,
    publicKeys: { ed25519: ed.publicKey, x25519: xk.publicKey, mlkem768: kem.publicKey },
    signing: ed.privateKey,
    x25519: xk.privateKey,
    mlkemSecret: kem.secretKey,
  };
}

/**
 * Zeroes the seeds and the ML-KEM secret key. Best effort: the CryptoKeys cannot be zeroed from
 * JS (they are non-extractable and freed by the GC), and the JS engine may have left copies of
 * intermediate values behind.
 */
export function wipeIdentity(id: Identity): void {
  id.seeds.ed25519.fill(0);
  id.seeds.x25519.fill(0);
  id.seeds.mlkem.fill(0);
  id.mlkemSecret.fill(0);
}

/**
 * A node name: 1..64 bytes of UTF-8, no control characters (it is printed in terminals and
 * logs, and stored length-prefixed in identity.key), no surrounding whitespace.
 */
export function validateName(name: string): void {
  const bytes = utf8(name).length;
  let problem: string | null = null;
  if (bytes === 0) problem = "it is empty";
  else if (bytes > MAX_NAME_BYTES) {
    problem = `it is ${bytes} bytes long (at most ${MAX_NAME_BYTES})`;
  } // deno-lint-ignore no-control-regex
  else if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)) {
    problem = "it contains control characters";
  } else if (name.trim() !== name) problem = "it starts or ends with whitespace";
  if (problem !== null) {
    throw new DenError("bad_name", `invalid node name ${JSON.stringify(name)}: ${problem}`, {
      exit: Exit.usage,
      hint: "choose a short name such as your host or user name, e.g. --name alice-laptop",
    });
  }
}
