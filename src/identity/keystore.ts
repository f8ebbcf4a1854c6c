/**
 * identity.key: the seeds, encrypted under a passphrase (Argon2id → XChaCha20-Poly1305) or, for
 * servers and CI, stored in the clear with a checksum. Layout in keyformat.ts and
 * docs/KEYSTORE.md. Reading never changes the file.
 */
import { xchachaOpen, xchachaSeal } from "../crypto/aead.ts";
import { concatBytes, equalBytes } from "../crypto/encoding.ts";
import { ARGON2_DEFAULT, argon2idKey, type Argon2Params, sha256 } from "../crypto/kdf.ts";
import { randomBytes } from "../crypto/random.ts";
import { DenError, Exit, isNotFound } from "../errors.ts";
import { readBounded, writeFileAtomic } from "../util/fsio.ts";
import { type Identity, identityFromSeeds } from "./keys.ts";
import {
  argon2ParamsProblem,
  checkBodyLength,
  CHECKSUM_BYTES,
  decodePayload,
  encodeHeader,
  encodePayload,
  HEADER_BYTES,
  KDF_NONE,
  KEY_FILE_MAX_BYTES,
  KeyFormatError,
  type KeyHeader,
  NONCE_BYTES,
  parseHeader,
  SALT_BYTES,
} from "./keyformat.ts";
import { checkPrivateFile } from "./permissions.ts";

export interface WriteKeystoreOptions {
  /** null stores the keys unencrypted (den init --no-passphrase). */
  passphrase: string | null;
  params?: Argon2Params;
}

export interface KeystoreHeaderInfo {
  encrypted: boolean;
  params: Argon2Params | null;
  version: number;
}

const RESTORE_HINT = "restore it from a backup, or run den init --force to create a new " +
  "identity (peers will see a new fingerprint)";

/** Atomic replace; the file is 0600 from the moment it exists. */
export async function writeKeystore(
  path: string,
  identity: Identity,
  opts: WriteKeystoreOptions,
): Promise<void> {
  const params = opts.params ?? ARGON2_DEFAULT;
  if (opts.passphrase !== null) {
    if (opts.passphrase.length === 0) {
      throw new DenError("empty_passphrase", "the passphrase is empty", {
        hint: "choose a passphrase, or use den init --no-passphrase to store the keys unencrypted",
      });
    }
    const problem = argon2ParamsProblem(params);
    if (problem !== null) throw new DenError("bad_kdf_params", problem, { exit: Exit.usage });
  }
  const payload = encodePayload(identity.name, identity.seeds);
  let file: Uint8Array;
  if (opts.passphrase === null) {
    const header = encodeHeader(null, new Uint8Array(SALT_BYTES), new Uint8Array(NONCE_BYTES));
    file = concatBytes(header, payload, sha256(concatBytes(header, payload)));
  } else {
    const salt = randomBytes(SALT_BYTES);
    const nonce = randomBytes(NONCE_BYTES);
    const header = encodeHeader(params, salt, nonce);
    const key = await argon2idKey(opts.passphrase, salt, params);
    try {
      file = concatBytes(header, xchachaSeal(key, nonce, payload, header));
    } finally {
      key.fill(0);
    }
  }
  payload.fill(0);
  try {
    await writeFileAtomic(path, file, 0o600);
  } finally {
    file.fill(0);
  }
}

/**
 * Loads the identity. `getPassphrase` is called only for an encrypted file. Damage of any kind
 * is "key_file_corrupt" (exit 5); an AEAD failure is "wrong_passphrase", since a wrong
 * passphrase and a modified ciphertext cannot be told apart.
 */
export async function readKeystore(
  path: string,
  getPassphrase: () => Promise<string>,
  opts: { checkMode?: boolean } = {},
): Promise<Identity> {
  if (opts.checkMode !== false) await withFsErrors(path, () => checkPrivateFile(path));
  const file = await readFile(path);
  try {
    const header = parse(path, () => parseHeader(file));
    const body = file.subarray(HEADER_BYTES);
    parse(path, () => checkBodyLength(header, body.length));
    const payload = header.kdf === KDF_NONE
      ? verifyChecksum(path, header, body)
      : await decrypt(path, header, body, await getPassphrase());
    try {
      const { name, seeds } = parse(path, () => decodePayload(payload));
      try {
        return await identityFromSeeds(name, seeds);
      } finally {
        seeds.ed25519.fill(0);
        seeds.x25519.fill(0);
        seeds.mlkem.fill(0);
      }
    } finally {
      payload.fill(0);
    }
  } finally {
    file.fill(0);
  }
}

/** What `den doctor` reports, without a passphrase. Checks the structure (and the checksum). */
export async function readKeystoreHeader(path: string): Promise<KeystoreHeaderInfo> {
  const file = await readFile(path);
  try {
    const header = parse(path, () => parseHeader(file));
    const body = file.subarray(HEADER_BYTES);
    parse(path, () => checkBodyLength(header, body.length));
    if (header.kdf === KDF_NONE) verifyChecksum(path, header, body).fill(0);
    return { encrypted: header.kdf !== KDF_NONE, params: header.params, version: header.version };
  } finally {
    file.fill(0);
  }
}

async function readFile(path: string): Promise<Uint8Array> {
  const read = await withFsErrors(path, () => readBounded(path, KEY_FILE_MAX_BYTES));
  if (read.notAFile) throw corrupt(path, "it is not a regular file");
  if (read.tooLarge) throw corrupt(path, `it is larger than ${KEY_FILE_MAX_BYTES} bytes`);
  return read.bytes;
}

function verifyChecksum(path: string, header: KeyHeader, body: Uint8Array): Uint8Array {
  const payload = body.slice(0, body.length - CHECKSUM_BYTES);
  const expected = sha256(concatBytes(header.bytes, payload));
  if (!equalBytes(expected, body.subarray(body.length - CHECKSUM_BYTES))) {
    payload.fill(0);
    throw corrupt(path, "its checksum does not match (the file was modified or damaged)");
  }
  return payload;
}

async function decrypt(
  path: string,
  header: KeyHeader,
  body: Uint8Array,
  passphrase: string,
): Promise<Uint8Array> {
  const params = header.params;
  if (params === null) throw new Error("decrypt: unencrypted header"); // unreachable
  let key: Uint8Array;
  try {
    key = await argon2idKey(passphrase, header.salt, params);
  } catch (err) {
    const mib = params.memoryKiB / 1024;
    throw new DenError(
      "kdf_failed",
      `cannot derive the key for ${path} (Argon2id, ${mib} MiB): ${(err as Error).message}`,
      { hint: "free some memory and try again" },
    );
  }
  try {
    return xchachaOpen(key, header.nonce, body, header.bytes);
  } catch (err) {
    if (!(err instanceof DenError && err.code === "aead_failed")) throw err;
    throw new DenError(
      "wrong_passphrase",
      `cannot unlock ${path}: wrong passphrase, or the key file was modified`,
      {
        exit: Exit.error,
        hint: "check the passphrase (from --passphrase-file, DEN_PASSPHRASE or the prompt) and " +
          `try again; if it is right, the file was damaged: ${RESTORE_HINT}`,
      },
    );
  } finally {
    key.fill(0);
  }
}

function parse<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof KeyFormatError)) throw err;
    throw corrupt(path, err.message, err.unsupportedVersion);
  }
}

function corrupt(path: string, what: string, unsupportedVersion = false): DenError {
  const hint = unsupportedVersion
    ? `it may have been written by a newer den: upgrade den; otherwise ${RESTORE_HINT}`
    : RESTORE_HINT;
  return new DenError("key_file_corrupt", `key file ${path} is unusable: ${what}`, {
    exit: Exit.verification,
    hint,
  });
}

/** Maps the file-system errors a user can fix to messages naming the key file. */
async function withFsErrors<T>(path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new DenError("key_file_unreadable", `cannot read key file ${path}: permission denied`, {
        exit: Exit.error,
        hint: "run den as the user that owns the key file",
      });
    }
    if (!isNotFound(err)) throw err;
    throw new DenError("no_identity", `key file ${path} does not exist`, {
      exit: Exit.error,
      hint: "run den init --name NAME to create an identity (or pass --home if it lives elsewhere)",
    });
  }
}
