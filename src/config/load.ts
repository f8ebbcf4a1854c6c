/** Reading config.toml: a bounded read, TOML parsing, then validation with line numbers. */
import { parse, TomlError } from "smol-toml";
import { DenError, Exit } from "../errors.ts";
import { ConfigError } from "./error.ts";
import { lineLocator } from "./locate.ts";
import { type Config, validateConfig } from "./schema.ts";
import { type BoundedRead, readBounded } from "../util/fsio.ts";

/** A config is a few KiB; anything near this is a mistake or an attack, not a config. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Deeper inline nesting than any valid config; keeps the parser's recursion small. */
const MAX_TOML_DEPTH = 16;

/** The parser's own words without its "Invalid TOML document:" prefix and code excerpt. */
function tomlReason(err: TomlError): string {
  return err.message.replace(/^Invalid TOML document:\s*/, "").split("\n")[0].trim();
}

/** Parses and validates config text; `fileLabel` prefixes every message (`config.toml:12: …`). */
export function parseConfig(source: string, fileLabel: string): Config {
  let raw: unknown;
  try {
    // Integers as BigInt so `mtu = 1380.0` (a float) is told apart from `mtu = 1380`.
    raw = parse(source, { integersAsBigInt: true, maxDepth: MAX_TOML_DEPTH });
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const reason = tomlReason(err);
    const excerpt = err.codeblock.trimEnd().split("\n").map((l) => `    ${l}`.trimEnd()).join("\n");
    throw new ConfigError(fileLabel, [{
      path: "",
      line: err.line,
      found: `invalid TOML (${reason})`,
      allowed: "TOML syntax, see https://toml.io",
    }], `${fileLabel}:${err.line}:${err.column}: invalid TOML: ${reason}\n${excerpt}`);
  }
  return validateConfig(raw, lineLocator(source), fileLabel);
}

/** Loads, parses and validates a config file. `source` is the text as read. */
export async function loadConfig(path: string): Promise<{ config: Config; source: string }> {
  let read: BoundedRead;
  try {
    read = await readBounded(path, MAX_CONFIG_BYTES);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new DenError("no_config", `no config file at ${path}`, {
        exit: Exit.error,
        hint: "create one with: den init --name NAME",
      });
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new DenError("config_unreadable", `cannot read ${path}: permission denied`, {
        hint: "run den as the user that owns the file, or fix its permissions",
      });
    }
    throw err;
  }
  if (read.notAFile) {
    throw new DenError("config_unreadable", `${path} is not a regular file`, {
      hint: "point --home (or DEN_HOME) at the directory that holds config.toml",
    });
  }
  if (read.tooLarge) {
    throw new DenError("config_too_large", `${path} is larger than ${MAX_CONFIG_BYTES} bytes`, {
      hint: "a config is a few KiB; check that this is the right file",
    });
  }
  const bytes = read.bytes;
  let source: string;
  try {
    source = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ConfigError(path, [{
      path: "",
      found: "bytes that are not UTF-8",
      allowed: "a UTF-8 text file (TOML)",
    }]);
  }
  return { config: parseConfig(source, path), source };
}
