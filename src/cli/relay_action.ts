/** `den relay`: validates the flags, loads the TLS files, runs the server until a signal. */
import { RelayServer, type RelayServerOptions } from "../../relay/server.ts";
import { canonicalIp } from "../../relay/limits.ts";
import { RELAY_PORT } from "../config/defaults.ts";
import { parseHostPort, ValueError } from "../config/validators.ts";
import { DenError, Exit } from "../errors.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, Logger, type LogLevel } from "../log/logger.ts";
import type { CommandContext } from "./context.ts";
import { oneOfFlag, positiveIntFlag, usageError } from "./flag_values.ts";

const RELAY_METRICS = "127.0.0.1:9001";
const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];
const HINT = "see den relay --help";

function usage(message: string, hint = HINT): DenError {
  return usageError(message, hint);
}

function hostPort(flag: string, text: string): { hostname: string; port: number } {
  try {
    const { host, port } = parseHostPort(text);
    return { hostname: host, port };
  } catch (err) {
    if (!(err instanceof ValueError)) throw err;
    throw usage(`--${flag}: "${text}" is not HOST:PORT: ${err.message}`);
  }
}

/** Everything but the TLS files, which need reading: flags checked before anything starts. */
function relayOptions(ctx: CommandContext): RelayServerOptions {
  const metrics = ctx.string("metrics") ?? RELAY_METRICS;
  const ping = positiveIntFlag(ctx, "ping-interval");
  const trustedProxies = ctx.list("trusted-proxy").map((ip) => {
    const canonical = canonicalIp(ip);
    if (canonical === null) throw usage(`--trusted-proxy: "${ip}" is not an IP address`);
    return canonical;
  });
  const listen = hostPort("listen", ctx.string("listen") ?? `0.0.0.0:${RELAY_PORT}`);
  const reflector = ctx.string("reflector");
  const reflect = reflector === "off" ? null : reflector === undefined
    // By default next to the listener; a clash there is logged, not fatal.
    ? { ...listen, required: false }
    : { ...hostPort("reflector", reflector), required: true };
  if (reflect && reflect.port === 65535) {
    throw usage(`--reflector: port 65535 leaves no room for the second port (PORT+1)`);
  }
  return {
    ...listen,
    reflector: reflect,
    metrics: metrics === "off" ? null : hostPort("metrics", metrics),
    maxConns: positiveIntFlag(ctx, "max-conns"),
    maxConnsPerIp: positiveIntFlag(ctx, "max-conns-per-ip"),
    roomRate: positiveIntFlag(ctx, "room-rate"),
    mailboxRate: positiveIntFlag(ctx, "mailbox-rate"),
    pingIntervalMs: ping === undefined ? undefined : ping * 1000,
    trustedProxies,
  };
}

async function readPem(flag: string, file: string, marker: RegExp): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    throw new DenError("tls_file", `cannot read --${flag} ${file}: ${(err as Error).message}`, {
      hint: "check the path and that this user may read the file",
    });
  }
  if (!marker.test(text)) {
    throw new DenError("tls_file", `--${flag} ${file} is not a PEM file (${marker.source})`, {
      hint: "--tls-cert takes the PEM certificate chain, --tls-key the PEM private key",
    });
  }
  return text;
}

async function loadTls(ctx: CommandContext): Promise<RelayServerOptions["tls"]> {
  const certFile = ctx.string("tls-cert");
  const keyFile = ctx.string("tls-key");
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    throw usage(
      `--${certFile === undefined ? "tls-key" : "tls-cert"} needs --${
        certFile === undefined ? "tls-cert" : "tls-key"
      } too`,
      "give both --tls-cert FILE and --tls-key FILE for wss://, or neither for ws://",
    );
  }
  return {
    cert: await readPem("tls-cert", certFile, /-----BEGIN CERTIFICATE-----/),
    key: await readPem("tls-key", keyFile, /-----BEGIN [A-Z ]*PRIVATE KEY-----/),
  };
}

async function startServer(opts: RelayServerOptions): Promise<RelayServer> {
  try {
    return await RelayServer.start(opts);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (err instanceof Deno.errors.AddrInUse) {
      throw new DenError("listen", `cannot listen: an address is already in use (${msg})`, {
        hint: "another relay may be running; choose other ports with --listen, --metrics and " +
          "--reflector",
      });
    }
    throw new DenError("listen", `cannot start the relay: ${msg}`, {
      hint: opts.tls ? "check that --tls-key is the private key of --tls-cert" : undefined,
    });
  }
}

export async function runRelay(ctx: CommandContext): Promise<number> {
  const level = oneOfFlag<LogLevel>(ctx, "log-level", LOG_LEVELS, "info");
  const format = oneOfFlag<LogFormat>(ctx, "log-format", LOG_FORMATS, "text");
  const opts = relayOptions(ctx);
  opts.tls = await loadTls(ctx);
  await Deno.permissions.revoke({ name: "read" });
  opts.log = new Logger("relay", { level, format });
  const server = await startServer(opts);
  const stop = Promise.withResolvers<Deno.Signal>();
  const listeners = SIGNALS.map((sig) => [sig, () => stop.resolve(sig)] as const);
  for (const [sig, fn] of listeners) Deno.addSignalListener(sig, fn);
  try {
    opts.log.info(`${await stop.promise} received, stopping`);
    await server.close();
  } finally {
    for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
  }
  return Exit.ok;
}
