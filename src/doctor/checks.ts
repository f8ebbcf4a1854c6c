/** `den doctor`'s checks: each says ok, warn or fail, what it saw, and how to fix a failure. */
import type { Config } from "../config/schema.ts";
import { loadConfig } from "../config/load.ts";
import type { DenPaths } from "../config/paths.ts";
import { parseHostPort } from "../config/validators.ts";
import { DenError } from "../errors.ts";
import { fingerprint } from "../identity/fingerprint.ts";
import { readKeystore, readKeystoreHeader } from "../identity/keystore.ts";
import { checkPrivateDir, checkPrivateFile } from "../identity/permissions.ts";
import { readPublicFile } from "../identity/pubfile.ts";
import { callDaemon } from "../ipc/client.ts";
import { vpnCheck } from "./vpn_check.ts";
import { natCheck } from "./nat_check.ts";

export interface CheckResult {
  check: string;
  status: "ok" | "warn" | "fail";
  detail: string;
  fix?: string;
}

/** No release of den predates this; a clock before it is certainly wrong. */
const EARLIEST_PLAUSIBLE = Date.UTC(2026, 0, 1);
/** Peer handshakes refuse timestamps further apart than this. */
const MAX_SKEW_MS = 5 * 60_000;

function fromError(check: string, err: unknown): CheckResult {
  if (err instanceof DenError) {
    return { check, status: "fail", detail: err.message, fix: err.hint };
  }
  return { check, status: "fail", detail: err instanceof Error ? err.message : String(err) };
}

async function dirs(paths: DenPaths): Promise<CheckResult> {
  try {
    for (const d of new Set([paths.configDir, paths.dataDir])) await checkPrivateDir(d);
    return { check: "directories", status: "ok", detail: `${paths.configDir} is private (0700)` };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return {
        check: "directories",
        status: "fail",
        detail: `${paths.configDir} does not exist`,
        fix: "den init --name NAME",
      };
    }
    return fromError("directories", err);
  }
}

async function identity(paths: DenPaths): Promise<CheckResult> {
  const check = "identity";
  try {
    await checkPrivateFile(paths.identityKey);
    const header = await readKeystoreHeader(paths.identityKey);
    const pub = await readPublicFile(paths.identityPub);
    if (!header.encrypted) {
      // Unencrypted keys can be fully verified without a passphrase.
      const id = await readKeystore(paths.identityKey, () => Promise.reject());
      if (fingerprint(id.publicKeys) !== pub.fingerprint) {
        return {
          check,
          status: "fail",
          detail: `${paths.identityPub} does not match ${paths.identityKey}`,
          fix: "restore both files from the same backup",
        };
      }
      return {
        check,
        status: "warn",
        detail: `${pub.name} ${pub.fingerprint}; private keys are NOT encrypted (--no-passphrase)`,
        fix: "fine for servers and CI; on a laptop re-create it with a passphrase",
      };
    }
    const p = header.params!;
    return {
      check,
      status: "ok",
      detail: `${pub.name} ${pub.fingerprint}; encrypted (Argon2id ${p.memoryKiB / 1024} MiB, ` +
        `t=${p.iterations}, p=${p.parallelism})`,
    };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return { check, status: "fail", detail: "no identity", fix: "den init --name NAME" };
    }
    return fromError(check, err);
  }
}

function portFree(label: string, hostPort: string): CheckResult {
  const check = `port ${label}`;
  const { host, port } = parseHostPort(hostPort);
  try {
    const l = Deno.listen({ hostname: host.replace(/^\[|\]$/g, ""), port });
    l.close();
    return { check, status: "ok", detail: `${hostPort} is free` };
  } catch (err) {
    const why = err instanceof Deno.errors.AddrInUse
      ? "is in use by another process"
      : err instanceof Deno.errors.AddrNotAvailable
      ? "is not an address of this machine"
      : `cannot be bound (${err instanceof Error ? err.message : err})`;
    return {
      check,
      status: "fail",
      detail: `${hostPort} ${why}`,
      fix: `choose another [node] ${label} address in config.toml`,
    };
  }
}

function clock(now: number): CheckResult {
  if (now < EARLIEST_PLAUSIBLE) {
    return {
      check: "clock",
      status: "fail",
      detail: `system time ${new Date(now).toISOString()} is in the past`,
      fix: "enable time sync (e.g. timedatectl set-ntp true); handshakes need ±5 min",
    };
  }
  return { check: "clock", status: "ok", detail: new Date(now).toISOString() };
}

/** A relay is reachable when its HTTP side answers; its Date header shows our clock skew. */
async function relay(url: string, now: () => number): Promise<CheckResult> {
  const check = `relay ${url}`;
  const http = url.replace(/^ws/, "http");
  try {
    const res = await fetch(http, { method: "GET", signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    const date = Date.parse(res.headers.get("date") ?? "");
    if (Number.isFinite(date) && Math.abs(date - now()) > MAX_SKEW_MS) {
      return {
        check,
        status: "fail",
        detail: `reachable, but our clock differs from the relay's by ` +
          `${Math.round((now() - date) / 1000)} s`,
        fix: "enable time sync (e.g. timedatectl set-ntp true); handshakes need ±5 min",
      };
    }
    return { check, status: "ok", detail: `reachable (HTTP ${res.status})` };
  } catch (err) {
    return {
      check,
      status: "fail",
      detail: `not reachable: ${err instanceof Error ? err.message : err}`,
      fix: "check the URL in [relay] urls, and that the relay runs and its port is open",
    };
  }
}

export async function runChecks(paths: DenPaths, now = () => Date.now()): Promise<CheckResult[]> {
  const results: CheckResult[] = [await dirs(paths)];
  let config: Config | null = null;
  try {
    config = (await loadConfig(paths.config)).config;
    results.push({ check: "config", status: "ok", detail: `${paths.config} is valid` });
  } catch (err) {
    results.push(fromError("config", err));
  }
  results.push(await identity(paths));
  let running = false;
  try {
    const s = await callDaemon(paths.socket, "status", {}, 3000) as { pid: number };
    running = true;
    results.push({ check: "daemon", status: "ok", detail: `running (pid ${s.pid})` });
  } catch (err) {
    results.push({
      check: "daemon",
      status: "warn",
      detail: err instanceof DenError ? err.message : String(err),
      fix: "den daemon (or den service install)",
    });
  }
  // A running daemon holds its own ports; only check them when it is not running.
  if (config && !running) {
    results.push(portFree("listen", config.node.listen));
    if (config.node.metrics !== "off") results.push(portFree("metrics", config.node.metrics));
  }
  results.push(clock(now()));
  results.push(await vpnCheck(paths));
  for (const url of config?.relay.urls ?? []) results.push(await relay(url, now));
  if (config) {
    results.push(
      await natCheck(config.relay.urls).catch((err) => ({
        check: "nat",
        status: "warn" as const,
        detail: `cannot tell: ${err instanceof Error ? err.message : err}`,
      })),
    );
  }
  return results;
}
