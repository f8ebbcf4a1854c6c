/** The flags of `den service …`, checked together: each conflict is a usage error (exit 2). */
import { parseHostPort, ValueError } from "../config/validators.ts";
import { RELAY_PORT } from "../config/defaults.ts";
import { DenError, Exit } from "../errors.ts";
import type { RelayFlags, ServiceKind, ServiceScope } from "./service_types.ts";

export interface FlagReader {
  string(name: string): string | undefined;
  bool(name: string): boolean;
}

export interface ServiceOptions {
  kind: ServiceKind;
  /** null: system when root, user otherwise. */
  scope: ServiceScope | null;
  /** --user: the account a system daemon runs as. */
  user: string | null;
  passphraseFile: string | null;
  relay: RelayFlags | null;
  print: boolean;
  noStart: boolean;
  force: boolean;
}

const RELAY_FLAGS = ["listen", "tls-cert", "tls-key", "metrics", "reflector"] as const;
const DAEMON_FLAGS = ["passphrase-file", "user"] as const;

function usage(message: string, hint = "see den service install --help"): DenError {
  return new DenError("usage", message, { exit: Exit.usage, hint });
}

function hostPort(flag: string, text: string): number {
  try {
    return parseHostPort(text).port;
  } catch (err) {
    if (!(err instanceof ValueError)) throw err;
    throw usage(`--${flag}: "${text}" is not HOST:PORT: ${err.message}`);
  }
}

export function readServiceOptions(flags: FlagReader): ServiceOptions {
  const kind: ServiceKind = flags.bool("relay") ? "relay" : "daemon";
  const scopeText = flags.string("scope");
  if (scopeText !== undefined && scopeText !== "system" && scopeText !== "user") {
    throw usage(`--scope: found "${scopeText}", allowed: system, user`);
  }
  const scope = (scopeText ?? null) as ServiceScope | null;
  const given = (names: readonly string[]) => names.filter((n) => flags.string(n) !== undefined);
  if (kind === "daemon" && given(RELAY_FLAGS).length) {
    throw usage(
      `--${given(RELAY_FLAGS)[0]} configures the relay service and needs --relay`,
      "den service install --relay --listen HOST:PORT …",
    );
  }
  if (kind === "relay" && given(DAEMON_FLAGS).length) {
    const flag = given(DAEMON_FLAGS)[0];
    throw usage(
      `--${flag} is for the daemon service, not the relay` +
        (flag === "user" ? " (a system relay runs as a dynamic user)" : " (it has no identity)"),
    );
  }
  const user = flags.string("user") ?? null;
  if (user !== null && scope === "user") {
    throw usage("--user needs --scope system: a user service always runs as you");
  }
  let relay: ServiceOptions["relay"] = null;
  if (kind === "relay") {
    const listen = flags.string("listen") ?? `0.0.0.0:${RELAY_PORT}`;
    const tlsCert = flags.string("tls-cert") ?? null, tlsKey = flags.string("tls-key") ?? null;
    if ((tlsCert === null) !== (tlsKey === null)) {
      throw usage(
        `--${tlsCert === null ? "tls-key" : "tls-cert"} needs --${
          tlsCert === null ? "tls-cert" : "tls-key"
        } too`,
        "give both --tls-cert FILE and --tls-key FILE for wss://, or neither for ws://",
      );
    }
    const metrics = flags.string("metrics") ?? null;
    if (metrics !== null && metrics !== "off") hostPort("metrics", metrics);
    const reflector = flags.string("reflector") ?? null;
    if (reflector !== null && reflector !== "off") hostPort("reflector", reflector);
    relay = { listen, port: hostPort("listen", listen), tlsCert, tlsKey, metrics, reflector };
  }
  return {
    kind,
    scope,
    user,
    passphraseFile: flags.string("passphrase-file") ?? null,
    relay,
    print: flags.bool("print"),
    noStart: flags.bool("no-start"),
    force: flags.bool("force"),
  };
}
