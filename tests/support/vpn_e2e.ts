/**
 * Helpers shared by the VPN end-to-end tests (tests/e2e/vpn_test.ts, vpn_dataplane_test.ts):
 * whether they can run here, commands inside network namespaces, daemons whose logs are kept,
 * `den … --json` answers, and timings printed as they go.
 */
import { den } from "../../scripts/lib/den_process.ts";
import { netnsUnavailable, onPath, runOutput } from "../../scripts/lib/netns.ts";

export const ROOT = new URL("../../", import.meta.url).pathname;
export const SHIM = `${ROOT}dist/shim/libden_tun-linux-${Deno.build.arch}.so`;

export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why a VPN e2e test cannot run here (null: it can); builds the TUN shim first when it is
 * missing. `tools`: the commands it needs besides `ip`.
 */
export async function unavailable(tools: string[] = ["ping"]): Promise<string | null> {
  const why = netnsUnavailable(tools);
  if (why) return why;
  if (!exists("/dev/net/tun")) return "no /dev/net/tun";
  if (exists(SHIM)) return null;
  if (!onPath("cc")) return `no TUN shim (${SHIM}) and no cc to build it`;
  const out = await new Deno.Command("bash", {
    args: [`${ROOT}scripts/build-shim`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success || !exists(SHIM)) {
    return `scripts/build-shim failed: ${new TextDecoder().decode(out.stderr).trim()}`;
  }
  return null;
}

/** `ip netns exec NS argv…` without throwing: exit status and everything printed. */
export function nsRun(ns: string, argv: string[]): Promise<{ ok: boolean; out: string }> {
  return runOutput(["ip", "netns", "exec", ns, ...argv]);
}

export function ping(ns: string, addr: string, count = 3) {
  return nsRun(ns, ["ping", "-n", "-c", String(count), "-i", "0.2", "-W", "2", addr]);
}

export interface Logged {
  child: Deno.ChildProcess;
  log(): string;
  exited(): boolean;
  stop(signal?: Deno.Signal): Promise<void>;
}

/** A child process whose stderr (a den log) is collected. */
export function spawnLogged(cmd: Deno.Command): Logged {
  const child = cmd.spawn();
  let log = "";
  const done = (async () => {
    const dec = new TextDecoder();
    for await (const c of child.stderr) log += dec.decode(c, { stream: true });
  })();
  child.stdout.cancel();
  let exited = false;
  child.status.then(() => exited = true);
  return {
    child,
    log: () => log,
    exited: () => exited,
    async stop(signal: Deno.Signal = "SIGKILL") {
      try {
        child.kill(signal);
      } catch { /* gone */ }
      await child.status;
      await done;
    },
  };
}

export function childEnv(): Record<string, string> {
  const env: Record<string, string> = { ...Deno.env.toObject(), NO_COLOR: "1" };
  for (const k of ["RUST_BACKTRACE", "DEN_HOME", "DEN_PASSPHRASE"]) delete env[k];
  return env;
}

/** `den ARGS --json --home HOME`, parsed; undefined when it fails or prints no JSON. */
export async function json<T>(home: string, args: string[]): Promise<T | undefined> {
  const r = await den([...args, "--json", "--home", home]);
  if (r.code !== 0) return undefined;
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    return undefined;
  }
}

export function tail(text: string, lines = 40): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** How long `fn` took, printed as `LABEL: WHAT: N s`. */
export async function timed<T>(
  what: string,
  fn: () => Promise<T>,
  label = "vpn e2e",
): Promise<T> {
  const t0 = performance.now();
  const out = await fn();
  console.log(`${label}: ${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return out;
}
