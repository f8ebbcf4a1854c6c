/** identity.pub: the public half of an identity as pretty JSON, safe to share (mode 0644). */
import { fromBase64, fromUtf8, toBase64, utf8 } from "../crypto/encoding.ts";
import { DenError, Exit, isNotFound } from "../errors.ts";
import { fingerprint, normalizeFingerprint } from "./fingerprint.ts";
import { readBounded, writeFileAtomic } from "../util/fsio.ts";
import { type Identity, PUBLIC_KEY_BYTES, type PublicKeys, validateName } from "./keys.ts";

export const PUB_FILE_VERSION = 1;
export const PUB_FILE_MAX_BYTES = 16 * 1024;

export interface PublicFile {
  name: string;
  fingerprint: string;
  publicKeys: PublicKeys;
}

export async function writePublicFile(
  path: string,
  identity: Pick<Identity, "name" | "publicKeys">,
): Promise<void> {
  const doc = {
    version: PUB_FILE_VERSION,
    name: identity.name,
    fingerprint: fingerprint(identity.publicKeys),
    ed25519: toBase64(identity.publicKeys.ed25519),
    x25519: toBase64(identity.publicKeys.x25519),
    mlkem768: toBase64(identity.publicKeys.mlkem768),
  };
  await writeFileAtomic(path, utf8(JSON.stringify(doc, null, 2) + "\n"), 0o644);
  // The umask may have removed read bits; the file is public by design.
  if (Deno.build.os !== "windows") await Deno.chmod(path, 0o644);
}

/**
 * Reads and fully validates identity.pub. A fingerprint that does not match the keys means the
 * file was edited or damaged: "pub_file_mismatch", exit 5.
 */
export async function readPublicFile(path: string): Promise<PublicFile> {
  let read;
  try {
    read = await readBounded(path, PUB_FILE_MAX_BYTES);
  } catch (err) {
    if (isNotFound(err)) {
      throw new DenError("pub_file_missing", `public identity file ${path} does not exist`, {
        exit: Exit.error,
        hint: "run den init to create an identity",
      });
    }
    throw err;
  }
  if (read.notAFile) throw invalid(path, "it is not a regular file");
  if (read.tooLarge) throw invalid(path, `it is larger than ${PUB_FILE_MAX_BYTES} bytes`);

  let doc: unknown;
  try {
    doc = JSON.parse(fromUtf8(read.bytes));
  } catch {
    throw invalid(path, "it is not valid UTF-8 JSON");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw invalid(path, "it is not a JSON object");
  }
  const o = doc as Record<string, unknown>;
  if (o.version !== PUB_FILE_VERSION) {
    throw invalid(path, `unsupported version ${JSON.stringify(o.version)} (expected 1)`);
  }
  if (typeof o.name !== "string") throw invalid(path, `"name" must be a string`);
  try {
    validateName(o.name);
  } catch (err) {
    throw invalid(path, err instanceof Error ? err.message : String(err));
  }
  const publicKeys: PublicKeys = {
    ed25519: key(path, o, "ed25519"),
    x25519: key(path, o, "x25519"),
    mlkem768: key(path, o, "mlkem768"),
  };
  if (typeof o.fingerprint !== "string") throw invalid(path, `"fingerprint" must be a string`);
  let stated: string;
  try {
    stated = normalizeFingerprint(o.fingerprint);
  } catch {
    throw invalid(path, `"fingerprint" is not a valid fingerprint`);
  }
  const actual = fingerprint(publicKeys);
  if (stated !== actual) {
    throw new DenError(
      "pub_file_mismatch",
      `${path}: the fingerprint in the file (${stated}) does not match its keys (${actual}); ` +
        "the file was modified or damaged",
      { exit: Exit.verification, hint: pubHint() },
    );
  }
  return { name: o.name, fingerprint: actual, publicKeys };
}

function key(path: string, o: Record<string, unknown>, k: keyof PublicKeys): Uint8Array {
  const v = o[k];
  if (typeof v !== "string") throw invalid(path, `"${k}" must be a base64 string`);
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(v);
  } catch {
    throw invalid(path, `"${k}" is not valid base64`);
  }
  if (bytes.length !== PUBLIC_KEY_BYTES[k]) {
    throw invalid(path, `"${k}" is ${bytes.length} bytes, expected ${PUBLIC_KEY_BYTES[k]}`);
  }
  return bytes;
}

function invalid(path: string, what: string): DenError {
  return new DenError("pub_file_invalid", `${path} is not a valid den public identity: ${what}`, {
    exit: Exit.verification,
    hint: pubHint(),
  });
}

function pubHint(): string {
  return "identity.pub is derived from identity.key: restore it from a backup, or get a fresh " +
    "copy from its owner";
}
