/** Writing config.toml: the file `den init` creates, and an atomic replace. */
import { dirname } from "node:path";
import { writeFileAtomic } from "../util/fsio.ts";
import { DEFAULTS, RELAY_PORT } from "./defaults.ts";
import { DISCOVERY_DEFAULTS } from "./schema.ts";

export type InitialConfigOptions = {
  name: string;
  listen?: string;
  metrics?: string;
  relays?: string[];
};

/**
 * A TOML basic string. Lone UTF-16 surrogates, which TOML cannot express, become U+FFFD so the
 * output always parses and a bad value is reported by validation, not as a syntax error.
 */
function tomlString(s: string): string {
  return JSON.stringify(s.toWellFormed());
}

/** A commented example line for a key left at its default. */
function commented(key: string, value: string, note: string): string {
  return `# ${key} = ${value}`.padEnd(34) + `  # ${note}`;
}

/**
 * The config `den init` writes: the given values, the other defaults as comments, and commented
 * examples of every other section. Validate it with `parseConfig` before writing; every value
 * is quoted, so it always parses as TOML.
 */
export function renderInitialConfig(opts: InitialConfigOptions): string {
  const d = DEFAULTS.node;
  const n = DEFAULTS.networks;
  const relays = opts.relays ?? [];
  const relayExample = `wss://relay.example.org:${RELAY_PORT}`;
  const lines = [
    "# den configuration. Reference: docs/CONFIG.md",
    "# Apply changes with `den reload` (some keys need a restart; reload says which).",
    "",
    "[node]",
    `name = ${tomlString(opts.name)}`,
    opts.listen === undefined
      ? commented("listen", tomlString(d.listen), "where peers connect (TCP and UDP)")
      : `listen = ${tomlString(opts.listen)}`,
    opts.metrics === undefined
      ? commented("metrics", tomlString(d.metrics), 'Prometheus metrics, or "off"')
      : `metrics = ${tomlString(opts.metrics)}`,
    commented("log_format", tomlString(d.log_format), 'or "json"'),
    commented("log_level", tomlString(d.log_level), '"debug", "info", "warn" or "error"'),
    "",
    "# Peers to dial directly. Without an address a peer is found on the LAN; a fingerprint",
    "# pins its identity (otherwise it is trusted on first use).",
    "# [[peers]]",
    '# name = "server"',
    '# address = "203.0.113.7:7834"',
    '# fingerprint = "f476 wb6t iiq7 db37 sear ngbb 7w7p a6ez cgxj ywav 7njy sunq 7l2q"',
    "",
    "# Relays forward encrypted traffic between peers that cannot reach each other.",
    ...(relays.length === 0
      ? ["# [relay]", `# urls = [${tomlString(relayExample)}]`]
      : ["[relay]", `urls = [${relays.map(tomlString).join(", ")}]`]),
    "",
    "# LAN discovery: announce this node by mDNS and find peers that have no address by their",
    "# fingerprint. Strangers are never dialled; off while listen is a loopback address.",
    "# [discovery]",
    commented("mdns", String(DISCOVERY_DEFAULTS.mdns), "false: no multicast from this node"),
    "",
    "# A VPN network: its own interface, address and prefix. Needs root or CAP_NET_ADMIN.",
    "# [networks.office]",
    `# prefix = ${tomlString(n.prefix)}`,
    `# address = ${tomlString(n.address)}`,
    `# export = ${n.export}`,
    '# routes = ["192.168.1.0/24"]',
    `# mtu = ${n.mtu}`,
    "#",
    "# Which prefixes a peer may announce in this network.",
    "# [[networks.office.allow]]",
    '# peer = "server"',
    '# prefixes = ["10.20.0.0/16"]',
    "",
  ];
  return lines.join("\n");
}

/**
 * Writes `text` to `path` atomically: a temporary file in the same directory, flushed, then
 * renamed over the target, so a crash leaves the old file or the new one, never half of one.
 * Overwrites without asking; the caller decides. The config holds no secrets, hence 0644.
 */
export async function writeConfigFile(path: string, text: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, new TextEncoder().encode(text), 0o644);
}
