/**
 * Where the identity passphrase comes from, in this order: --passphrase-file, DEN_PASSPHRASE,
 * then a no-echo prompt when stdin is a terminal. Explicit flags win over the environment, and
 * a script never blocks on a prompt it cannot answer.
 */
import { fromUtf8 } from "../crypto/encoding.ts";
import { DenError, Exit, isNotFound } from "../errors.ts";
import { readBounded } from "../util/fsio.ts";
import { HiddenLine } from "./line_editor.ts";

export const PASSPHRASE_FILE_MAX_BYTES = 4096;
export const MIN_NEW_PASSPHRASE_CHARS = 8;

export interface PassphraseOptions {
  /** --passphrase-file */
  file?: string;
  /** A new passphrase: prompt twice, require equality and a minimum length. */
  confirm?: boolean;
  /** Environment lookup; defaults to Deno.env.get. */
  env?: (key: string) => string | undefined;
  /** Shown in the prompt, e.g. "unlock identity.key" or "encrypt the new identity". */
  purpose: string;
  /** Overrides terminal detection (tests); defaults to Deno.stdin.isTerminal(). */
  interactive?: boolean;
}

export async function obtainPassphrase(opts: PassphraseOptions): Promise<string> {
  if (opts.file !== undefined) return await fromFile(opts.file);
  const env = opts.env ?? ((k: string) => Deno.env.get(k));
  const fromEnv = env("DEN_PASSPHRASE");
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  if (opts.interactive ?? Deno.stdin.isTerminal()) return await fromPrompt(opts);
  throw new DenError("no_passphrase", `a passphrase is needed to ${opts.purpose}`, {
    exit: Exit.error,
    hint: "give it with --passphrase-file FILE, or the DEN_PASSPHRASE environment variable, or " +
      "run den from a terminal to be prompted; for servers and CI, den init --no-passphrase " +
      "stores the keys unencrypted",
  });
}

async function fromFile(path: string): Promise<string> {
  let read;
  try {
    read = await readBounded(path, PASSPHRASE_FILE_MAX_BYTES);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    throw new DenError("passphrase_file_missing", `passphrase file ${path} does not exist`, {
      exit: Exit.usage,
      hint: "check the --passphrase-file path",
    });
  }
  const bad = (what: string) =>
    new DenError("bad_passphrase_file", `passphrase file ${path} ${what}`, {
      exit: Exit.error,
      hint: "put the passphrase on the first line of the file, with nothing else",
    });
  if (read.notAFile) throw bad("is not a regular file");
  if (read.tooLarge) throw bad(`is larger than ${PASSPHRASE_FILE_MAX_BYTES} bytes`);
  let text: string;
  try {
    text = fromUtf8(read.bytes);
  } catch {
    throw bad("is not valid UTF-8");
  } finally {
    read.bytes.fill(0);
  }
  // Editors and `echo` add one newline; it is not part of the passphrase.
  text = text.endsWith("\r\n") ? text.slice(0, -2) : text.endsWith("\n") ? text.slice(0, -1) : text;
  if (text === "") throw bad("is empty");
  return text;
}

async function fromPrompt(opts: PassphraseOptions): Promise<string> {
  const first = await promptHidden(`den: passphrase to ${opts.purpose}: `);
  if (!opts.confirm) return first;
  if ([...first].length < MIN_NEW_PASSPHRASE_CHARS) {
    throw new DenError(
      "weak_passphrase",
      `the passphrase is too short (at least ${MIN_NEW_PASSPHRASE_CHARS} characters)`,
      {
        exit: Exit.error,
        hint: "choose a longer passphrase; a few random words are easy to type and hard to guess",
      },
    );
  }
  const second = await promptHidden("den: repeat the passphrase: ");
  if (first !== second) {
    throw new DenError("passphrase_mismatch", "the two passphrases do not match", {
      exit: Exit.error,
      hint: "run the command again and type the same passphrase twice",
    });
  }
  return first;
}

/** Prompts on stderr and reads stdin in raw mode, so nothing is echoed. */
async function promptHidden(prompt: string): Promise<string> {
  const enc = new TextEncoder();
  await Deno.stderr.write(enc.encode(prompt));
  const line = new HiddenLine();
  const chunk = new Uint8Array(256);
  Deno.stdin.setRaw(true);
  try {
    for (;;) {
      const n = await Deno.stdin.read(chunk);
      const event = n === null ? "cancel" : line.feed(chunk.subarray(0, n));
      if (event === "more") continue;
      if (event === "cancel") {
        throw new DenError("cancelled", "cancelled: no passphrase entered", { exit: Exit.error });
      }
      if (line.overflow) {
        throw new DenError("passphrase_too_long", "the passphrase is longer than 1024 bytes", {
          exit: Exit.error,
          hint: "use --passphrase-file for very long passphrases",
        });
      }
      return line.text();
    }
  } finally {
    chunk.fill(0);
    line.wipe();
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(enc.encode("\n"));
  }
}
