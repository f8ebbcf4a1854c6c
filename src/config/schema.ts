/**
 * The shape of config.toml and its validation. Validation walks the whole document and collects
 * every problem, so one edit-and-retry fixes them all; the result has every default filled in.
 */
import { DEFAULTS } from "./defaults.ts";
import { closest } from "../util/suggest.ts";
import { describe, isTable, quote, showPath } from "./describe.ts";
import { ConfigError, type ConfigIssue } from "./error.ts";
import type { Locate } from "./locate.ts";
import {
  type Cidr,
  formatCidr,
  isFingerprint,
  isIpInPrefix,
  maskBytes,
  normalizeFingerprint,
  parseCidr,
  parseHostPort,
  parseIp,
  parseRelayUrl,
  sameBytes,
  ValueError,
} from "./validators.ts";

export { ConfigError, type ConfigIssue } from "./error.ts";

export type LogFormat = "text" | "json";
export type LogLevel = "debug" | "info" | "warn" | "error";

export type NodeConfig = {
  name: string;
  /** HOST:PORT for peer connections (TCP and UDP). */
  listen: string;
  /** HOST:PORT for Prometheus metrics, or "off". */
  metrics: string;
  log_format: LogFormat;
  log_level: LogLevel;
};

export type PeerConfig = {
  name: string;
  /** HOST:PORT to dial; null: found by LAN discovery or through a relay. */
  address: string | null;
  /** Pinned fingerprint, normalised (52 lowercase base32 characters); null: trust on first use. */
  fingerprint: string | null;
};

export type RelayConfig = { urls: string[] };

/** LAN discovery (docs/DISCOVERY.md). */
export type DiscoveryConfig = {
  /** Announce this node and find pinned peers and teammates by mDNS on the LAN. */
  mdns: boolean;
};

/** Defaults of [discovery]: mDNS on (it still stays off while the listener is on loopback). */
export const DISCOVERY_DEFAULTS: Readonly<DiscoveryConfig> = Object.freeze({ mdns: true });

/** Which prefixes one peer may announce in a network. */
export type AllowRule = {
  /** A peer name, or a normalised fingerprint. */
  peer: string;
  prefixes: string[];
};

export type NetworkConfig = {
  /** The key of `[networks.NAME]`, repeated here for convenience. */
  name: string;
  prefix: string;
  /** "auto" or an IP address inside `prefix`. */
  address: string;
  export: boolean;
  routes: string[];
  mtu: number;
  allow: AllowRule[];
};

/** A validated config with every default filled in. */
export type Config = {
  node: NodeConfig;
  peers: PeerConfig[];
  relay: RelayConfig;
  /** By network name; own properties only (names are validated, never `__proto__`). */
  networks: Record<string, NetworkConfig>;
  /** Present when the file has a [discovery] table; `mdnsEnabled` applies the default. */
  discovery?: DiscoveryConfig;
};

/** [discovery] mdns, with its default when the file does not say. */
export function mdnsEnabled(c: Config): boolean {
  return c.discovery?.mdns ?? DISCOVERY_DEFAULTS.mdns;
}

const KEYS = Object.freeze(
  {
    top: ["node", "peers", "relay", "networks", "discovery"],
    node: ["name", "listen", "metrics", "log_format", "log_level"],
    peer: ["name", "address", "fingerprint"],
    relay: ["urls"],
    network: ["prefix", "address", "export", "routes", "mtu", "allow"],
    allow: ["peer", "prefixes"],
    discovery: ["mdns"],
  } as const,
);

const LOG_FORMATS: readonly LogFormat[] = Object.freeze(["text", "json"]);
const LOG_LEVELS: readonly LogLevel[] = Object.freeze(["debug", "info", "warn", "error"]);
const MTU_MIN = 1280; // the IPv6 minimum link MTU
const MTU_MAX = 9000; // jumbo frames

const ALLOWED = Object.freeze({
  // [discovery] is left out of this text only because tests/unit/config_test.ts pins it.
  top: "the tables [node], [[peers]], [relay], [networks.NAME] and [discovery]",
  name: "a name of 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
  hostPort: "HOST:PORT with a port 1-65535",
  metrics: '"off" or HOST:PORT with a port 1-65535',
  logFormat: '"text" or "json"',
  logLevel: '"debug", "info", "warn" or "error"',
  fingerprint: "52 base32 characters (a-z, 2-7) as `den status` prints it; " +
    "spaces, '-' and ':' are ignored",
  relayUrl: 'a ws:// or wss:// URL, e.g. "wss://relay.example.org:8765"',
  relayUrls: 'an array of ws:// or wss:// URLs, e.g. ["wss://relay.example.org:8765"]',
  networkName: "a name of 1-15 lowercase letters, digits or '-', starting with a letter",
  cidr: 'an IPv4 or IPv6 prefix ADDRESS/BITS with the host bits zero, e.g. "10.1.0.0/16"',
  cidrs: 'an array of IPv4 or IPv6 prefixes, e.g. ["192.168.1.0/24"]',
  address: '"auto" or an IP address inside the network\'s prefix',
  bool: "true or false",
  mtu: `an integer ${MTU_MIN}-${MTU_MAX}`,
  peerRef: "a peer name or a fingerprint",
});

type Path = (string | number)[];
type Table = Record<string, unknown>;
type Ctx = { issues: ConfigIssue[]; locate: Locate };
/** Turns a raw value into a checked one, or throws `Bad` with what was found. */
type Conv<T> = (v: unknown) => T;

/** Thrown by converters; the message is the `found` text. */
class Bad extends Error {}

function lineOf(ctx: Ctx, path: Path): number | undefined {
  // Missing keys and array elements fall back to their table's (or array's) line.
  for (let n = path.length; n > 0; n--) {
    const line = ctx.locate(path.slice(0, n).map(String));
    if (line !== undefined) return line;
  }
  return undefined;
}

function report(ctx: Ctx, path: Path, found: string, allowed: string): void {
  const line = lineOf(ctx, path);
  const issue: ConfigIssue = { path: showPath(path), found, allowed };
  if (line !== undefined) issue.line = line;
  ctx.issues.push(issue);
}

/** An own property only: tables from the parser have no prototype, but callers' objects might. */
function own(t: Table, key: string): unknown {
  return Object.hasOwn(t, key) ? t[key] : undefined;
}

/** Runs `conv`, reporting a `Bad` at `path`; undefined when invalid. */
function check<T>(ctx: Ctx, path: Path, v: unknown, allowed: string, conv: Conv<T>): T | undefined {
  try {
    return conv(v);
  } catch (e) {
    if (!(e instanceof Bad)) throw e;
    report(ctx, path, e.message, allowed);
    return undefined;
  }
}

/** An optional key: `fallback` when absent, undefined when present but invalid. */
function opt<T>(
  ctx: Ctx,
  t: Table,
  path: Path,
  key: string,
  allowed: string,
  conv: Conv<T>,
  fallback: T,
): T | undefined {
  return Object.hasOwn(t, key) ? check(ctx, [...path, key], t[key], allowed, conv) : fallback;
}

function required<T>(
  ctx: Ctx,
  t: Table,
  path: Path,
  key: string,
  allowed: string,
  conv: Conv<T>,
): T | undefined {
  if (Object.hasOwn(t, key)) return check(ctx, [...path, key], t[key], allowed, conv);
  report(ctx, [...path, key], "nothing (the key is missing)", allowed);
  return undefined;
}

/** `v` as a table, reporting keys outside `keys` (when given); undefined if not a table. */
function table(
  ctx: Ctx,
  path: Path,
  v: unknown,
  keys: readonly string[] | null,
  label: string,
): Table | undefined {
  if (!isTable(v)) {
    report(ctx, path, describe(v), `a table ${label}`);
    return undefined;
  }
  for (const k of Object.keys(v)) {
    if (keys === null || keys.includes(k)) continue;
    const guess = closest(k.toLowerCase(), keys);
    const hint = guess ? ` (did you mean ${quote(guess)}?)` : "";
    report(
      ctx,
      [...path, k],
      `an unknown key ${quote(k)}`,
      `the keys of ${label}: ${keys.join(", ")}${hint}`,
    );
  }
  return v;
}

/** An array whose elements each go through `conv`; invalid elements are reported and dropped. */
function list<T>(
  ctx: Ctx,
  path: Path,
  v: unknown,
  allowed: string,
  allowedEach: string,
  conv: Conv<T>,
): T[] | undefined {
  if (!Array.isArray(v)) {
    report(ctx, path, describe(v), allowed);
    return undefined;
  }
  const out: T[] = [];
  v.forEach((elem, i) => {
    const value = check(ctx, [...path, i], elem, allowedEach, conv);
    if (value !== undefined) out.push(value);
  });
  return out;
}

// Converters -------------------------------------------------------------------------------------

function str(v: unknown): string {
  if (typeof v !== "string") throw new Bad(describe(v));
  return v;
}

/** The result of `parse` on a string value; its ValueError becomes the reported reason. */
function via<T>(parse: (s: string) => T): Conv<T> {
  return (v) => {
    const s = str(v);
    try {
      return parse(s);
    } catch (e) {
      if (e instanceof ValueError) throw new Bad(`${quote(s)} (${e.message})`);
      throw e;
    }
  };
}

/** A string that `parse` accepts, kept as written. */
function parsed(parse: (s: string) => unknown): Conv<string> {
  const check = via(parse);
  return (v) => {
    check(v);
    return v as string;
  };
}

/** Why `s` breaks a "first char, then chars, max length" naming rule, or null if it does not. */
function nameProblem(s: string, first: RegExp, rest: RegExp, max: number): string | null {
  if (s === "") return "an empty string";
  if (s.length > max) return `${s.length} characters long`;
  if (!first.test(s[0])) return `starts with ${JSON.stringify(s[0])}`;
  const bad = [...s].find((c) => !rest.test(c));
  return bad === undefined ? null : `contains ${JSON.stringify(bad)}`;
}

const peerNameProblem = (s: string) => nameProblem(s, /[A-Za-z0-9]/, /[A-Za-z0-9._-]/, 64);
const networkNameProblem = (s: string) => nameProblem(s, /[a-z]/, /[a-z0-9-]/, 15);

function name(v: unknown): string {
  const s = str(v);
  const problem = peerNameProblem(s);
  if (problem) throw new Bad(`${quote(s)} (${problem})`);
  return s;
}

function oneOf<T extends string>(values: readonly T[]): Conv<T> {
  return (v) => {
    const s = str(v);
    if (!(values as readonly string[]).includes(s)) throw new Bad(quote(s));
    return s as T;
  };
}

const hostPort = parsed(parseHostPort);
const metrics: Conv<string> = (v) => (v === "off" ? v : hostPort(v));
const cidr = parsed(parseCidr);
const relayUrl = parsed(parseRelayUrl);

const fingerprint = via(normalizeFingerprint);
const ip = parsed(parseIp);

function peerRef(v: unknown): string {
  const s = str(v);
  if (isFingerprint(s)) return normalizeFingerprint(s);
  if (peerNameProblem(s) === null) return s;
  throw new Bad(`${quote(s)} (neither a peer name nor a fingerprint)`);
}

function bool(v: unknown): boolean {
  if (typeof v !== "boolean") throw new Bad(describe(v));
  return v;
}

function mtu(v: unknown): number {
  if (typeof v !== "bigint" || v < MTU_MIN || v > MTU_MAX) throw new Bad(describe(v));
  return Number(v);
}

const ipOrAuto: Conv<string> = (v) => (v === "auto" ? v : ip(v));

// Sections ---------------------------------------------------------------------------------------

function validateNode(ctx: Ctx, root: Table): NodeConfig {
  const d = DEFAULTS.node;
  const path = ["node"];
  const present = Object.hasOwn(root, "node");
  if (!present) report(ctx, ["node", "name"], "nothing (there is no [node] table)", ALLOWED.name);
  const t = present ? table(ctx, path, own(root, "node"), KEYS.node, "[node]") : undefined;
  const field = <T>(key: string, allowed: string, conv: Conv<T>, fallback: T): T =>
    (t && opt(ctx, t, path, key, allowed, conv, fallback)) ?? fallback;
  return {
    name: (t && required(ctx, t, path, "name", ALLOWED.name, name)) ?? "",
    listen: field("listen", ALLOWED.hostPort, hostPort, d.listen),
    metrics: field("metrics", ALLOWED.metrics, metrics, d.metrics),
    log_format: field("log_format", ALLOWED.logFormat, oneOf(LOG_FORMATS), d.log_format),
    log_level: field("log_level", ALLOWED.logLevel, oneOf(LOG_LEVELS), d.log_level),
  };
}

/** `[[NAME]]` entries: an array whose elements are tables with `keys`. */
function tables<T>(
  ctx: Ctx,
  path: Path,
  v: unknown,
  keys: readonly string[],
  label: string,
  each: (t: Table, path: Path) => T,
): T[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    report(ctx, path, describe(v), `${label} entries (an array of tables)`);
    return [];
  }
  const out: T[] = [];
  v.forEach((elem, i) => {
    const t = table(ctx, [...path, i], elem, keys, label);
    if (t) out.push(each(t, [...path, i]));
  });
  return out;
}

/** Reports a value already used at another path of the same kind (names, fingerprints, peers). */
function unique(
  ctx: Ctx,
  seen: Map<string, Path>,
  value: string | null | undefined,
  path: Path,
  allowed: string,
): void {
  if (value === null || value === undefined) return;
  const first = seen.get(value);
  if (!first) {
    seen.set(value, path);
    return;
  }
  const line = lineOf(ctx, first);
  const where = `${showPath(first)}${line === undefined ? "" : ` on line ${line}`}`;
  report(ctx, path, `${quote(value)} (already used by ${where})`, allowed);
}

function validatePeers(ctx: Ctx, root: Table): PeerConfig[] {
  const names = new Map<string, Path>();
  const fingerprints = new Map<string, Path>();
  return tables(ctx, ["peers"], own(root, "peers"), KEYS.peer, "[[peers]]", (t, path) => {
    const peer = {
      name: required(ctx, t, path, "name", ALLOWED.name, name),
      address: opt(ctx, t, path, "address", ALLOWED.hostPort, hostPort, null),
      fingerprint: opt(ctx, t, path, "fingerprint", ALLOWED.fingerprint, fingerprint, null),
    };
    unique(ctx, names, peer.name, [...path, "name"], "a name no other [[peers]] entry has");
    unique(
      ctx,
      fingerprints,
      peer.fingerprint,
      [...path, "fingerprint"],
      "a fingerprint no other [[peers]] entry has",
    );
    return {
      name: peer.name ?? "",
      address: peer.address ?? null,
      fingerprint: peer.fingerprint ?? null,
    };
  });
}

function validateRelay(ctx: Ctx, root: Table): RelayConfig {
  const urls = [...DEFAULTS.relay.urls];
  if (!Object.hasOwn(root, "relay")) return { urls };
  const t = table(ctx, ["relay"], own(root, "relay"), KEYS.relay, "[relay]");
  if (!t || !Object.hasOwn(t, "urls")) return { urls };
  return {
    urls: list(ctx, ["relay", "urls"], t.urls, ALLOWED.relayUrls, ALLOWED.relayUrl, relayUrl) ??
      urls,
  };
}

/** Why a fixed address cannot be used in `prefix`, or null. */
function addressProblem(address: string, prefix: Cidr): string | null {
  const ip = parseIp(address);
  const where = formatCidr(prefix);
  if (!isIpInPrefix(ip, prefix)) return `not inside ${where}`;
  const hostBits = (ip.family === 4 ? 32 : 128) - prefix.bits;
  // On subnets big enough to have them, the all-zeros and (IPv4) all-ones hosts are not usable.
  if (hostBits < 2) return null;
  if (sameBytes(ip.bytes, prefix.address)) return `the network address of ${where}`;
  const mask = maskBytes(new Uint8Array(ip.bytes.length).fill(0xff), prefix.bits);
  const broadcast = prefix.address.map((b, i) => b | (~mask[i] & 0xff));
  if (ip.family === 4 && sameBytes(ip.bytes, broadcast)) return `the broadcast address of ${where}`;
  return null;
}

function validateNetwork(ctx: Ctx, netName: string, t: Table): NetworkConfig {
  const d = DEFAULTS.networks;
  const path = ["networks", netName];
  const prefix = opt(ctx, t, path, "prefix", ALLOWED.cidr, cidr, d.prefix);
  const address = opt(ctx, t, path, "address", ALLOWED.address, ipOrAuto, d.address);
  if (prefix !== undefined && address !== undefined && address !== "auto") {
    const problem = addressProblem(address, parseCidr(prefix));
    if (problem) {
      report(ctx, [...path, "address"], `${quote(address)} (${problem})`, ALLOWED.address);
    }
  }
  const peers = new Map<string, Path>();
  const label = `[[networks.${netName}.allow]]`;
  const allow = tables(ctx, [...path, "allow"], own(t, "allow"), KEYS.allow, label, (at, apath) => {
    const peer = required(ctx, at, apath, "peer", ALLOWED.peerRef, peerRef);
    unique(ctx, peers, peer, [...apath, "peer"], `a peer not named by another ${label} entry`);
    const prefixes = Object.hasOwn(at, "prefixes")
      ? list(ctx, [...apath, "prefixes"], at.prefixes, ALLOWED.cidrs, ALLOWED.cidr, cidr)
      : [];
    return { peer: peer ?? "", prefixes: prefixes ?? [] };
  });
  return {
    name: netName,
    prefix: prefix ?? d.prefix,
    address: address ?? d.address,
    export: opt(ctx, t, path, "export", ALLOWED.bool, bool, d.export) ?? d.export,
    routes:
      (Object.hasOwn(t, "routes")
        ? list(ctx, [...path, "routes"], t.routes, ALLOWED.cidrs, ALLOWED.cidr, cidr)
        : undefined) ?? [...d.routes],
    mtu: opt(ctx, t, path, "mtu", ALLOWED.mtu, mtu, d.mtu) ?? d.mtu,
    allow,
  };
}

function validateDiscovery(ctx: Ctx, root: Table): DiscoveryConfig | undefined {
  if (!Object.hasOwn(root, "discovery")) return undefined;
  const d = DISCOVERY_DEFAULTS;
  const t = table(ctx, ["discovery"], own(root, "discovery"), KEYS.discovery, "[discovery]");
  if (!t) return { ...d };
  return { mdns: opt(ctx, t, ["discovery"], "mdns", ALLOWED.bool, bool, d.mdns) ?? d.mdns };
}

function validateNetworks(ctx: Ctx, root: Table): Record<string, NetworkConfig> {
  const out: Record<string, NetworkConfig> = {};
  if (!Object.hasOwn(root, "networks")) return out;
  const all = table(ctx, ["networks"], own(root, "networks"), null, "[networks.NAME] per network");
  for (const [netName, v] of Object.entries(all ?? {})) {
    const problem = networkNameProblem(netName);
    if (problem) {
      report(
        ctx,
        ["networks", netName],
        `the name ${quote(netName)} (${problem})`,
        ALLOWED.networkName,
      );
    }
    const t = table(ctx, ["networks", netName], v, KEYS.network, `[networks.${netName}]`);
    if (!t) continue;
    const net = validateNetwork(ctx, netName, t);
    if (!problem) out[netName] = net;
  }
  return out;
}

function checkTopLevel(ctx: Ctx, root: Table): void {
  for (const k of Object.keys(root)) {
    if ((KEYS.top as readonly string[]).includes(k)) continue;
    const underNode = (KEYS.node as readonly string[]).includes(k);
    const guess = closest(k.toLowerCase(), KEYS.top);
    const hint = underNode
      ? ` (${k} belongs under [node])`
      : guess
      ? ` (did you mean ${quote(guess)}?)`
      : "";
    report(ctx, [k], `an unknown key ${quote(k)}`, `${ALLOWED.top}${hint}`);
  }
}

/**
 * Checks a parsed config.toml and fills in defaults. Throws a `ConfigError` listing every
 * problem, each with the line `locate` finds for it, labelled with `fileLabel`.
 */
export function validateConfig(raw: unknown, locate: Locate, fileLabel = "config.toml"): Config {
  const ctx: Ctx = { issues: [], locate };
  const root: Table = isTable(raw) ? raw : {};
  checkTopLevel(ctx, root);
  const config: Config = {
    node: validateNode(ctx, root),
    peers: validatePeers(ctx, root),
    relay: validateRelay(ctx, root),
    networks: validateNetworks(ctx, root),
  };
  const discovery = validateDiscovery(ctx, root);
  if (discovery) config.discovery = discovery;
  if (ctx.issues.length > 0) {
    // Whole-file problems first, then in file order; the sort is stable within a line.
    const sorted = [...ctx.issues].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ConfigError(fileLabel, sorted);
  }
  return config;
}
