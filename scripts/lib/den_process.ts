/**
 * Runs den from source as real child processes, with the same flags as `deno task den`
 * (read from deno.json so there is one list of permissions). Used by tests, demo and benches.
 */

import { denTaskFlags } from "../../src/util/den_task.ts";

const ROOT = new URL("../../", import.meta.url);
const MAIN = new URL("main.ts", ROOT).pathname;

const RUN_ARGS = ["--quiet", ...denTaskFlags(Deno.readTextFileSync(new URL("deno.json", ROOT)))];

export interface DenResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface DenOptions {
  env?: Record<string, string>;
  stdin?: string;
  cwd?: string;
  /** Run inside this network namespace (`ip netns exec`; needs root). */
  netns?: string;
}

function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { ...Deno.env.toObject(), NO_COLOR: "1" };
  delete env.RUST_BACKTRACE;
  delete env.DEN_HOME;
  delete env.DEN_PASSPHRASE;
  return { ...env, ...extra };
}

/** `deno run <the den task's flags> /abs/main.ts ARGS`: den from source, as deno task den runs it. */
export function denArgv(args: string[]): string[] {
  return [Deno.execPath(), "run", ...RUN_ARGS, MAIN, ...args];
}

export function denCommand(args: string[], opts: DenOptions = {}): Deno.Command {
  const deno = denArgv(args);
  const argv = opts.netns ? ["ip", "netns", "exec", opts.netns, ...deno] : deno;
  return new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: childEnv(opts.env),
    clearEnv: true,
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs one den command to completion. */
export async function den(args: string[], opts: DenOptions = {}): Promise<DenResult> {
  const child = denCommand(args, opts).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A daemon child process whose stderr (its log) and stdout are collected. */
export class DaemonProcess {
  readonly child: Deno.ChildProcess;
  readonly home: string;
  #log = "";
  #stdout = "";
  #gone = false;
  readonly #outputDone: Promise<void>;
  readonly exited: Promise<Deno.CommandStatus>;

  private constructor(home: string, child: Deno.ChildProcess) {
    this.home = home;
    this.child = child;
    this.exited = child.status;
    this.exited.then(() => this.#gone = true);
    const collect = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
      const dec = new TextDecoder();
      for await (const chunk of stream) add(dec.decode(chunk, { stream: true }));
    };
    this.#outputDone = Promise.all([
      collect(child.stderr, (s) => this.#log += s),
      collect(child.stdout, (s) => this.#stdout += s),
    ]).then(() => {});
  }

  /** Starts `den daemon --home HOME` and waits until `den status` answers. */
  static async start(home: string, opts: DenOptions & { args?: string[] } = {}) {
    const child = denCommand(["daemon", "--home", home, ...(opts.args ?? [])], opts).spawn();
    const d = new DaemonProcess(home, child);
    let exited = false;
    d.exited.then(() => exited = true);
    await waitFor(`daemon in ${home}`, async () => {
      if (exited) throw new Error(`daemon exited early:\n${(await d.finished()).log}`);
      return (await den(["status", "--home", home])).code === 0;
    });
    return d;
  }

  /** What the daemon has logged so far (stderr). */
  get log(): string {
    return this.#log;
  }

  /** What the daemon has written to stdout (nothing, normally). */
  get stdout(): string {
    return this.#stdout;
  }

  /** The process has exited. */
  get gone(): boolean {
    return this.#gone;
  }

  /** Waits for the process to end and its whole log to be read. */
  async finished(): Promise<{ status: Deno.CommandStatus; log: string }> {
    const status = await this.exited;
    await this.#outputDone;
    return { status, log: this.#log };
  }

  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.child.kill(signal);
    } catch { /* already gone */ }
  }

  /** Makes sure the process is gone (for test cleanup). */
  async stop(): Promise<void> {
    this.kill("SIGKILL");
    await this.finished();
  }
}

/**
 * A loopback port that is free for TCP and UDP now. Picked at random below the kernel's ephemeral
 * range (32768+): a port the kernel handed out would soon be handed out again to some outgoing
 * connection of a parallel test, before the node that was given it binds it.
 */
export function freePort(): number {
  for (;;) {
    const port = 20_000 + crypto.getRandomValues(new Uint16Array(1))[0] % 12_000;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      // The daemon's data plane takes the same UDP port (needs --unstable-net to check).
      if (typeof Deno.listenDatagram === "function") {
        Deno.listenDatagram({ hostname: "127.0.0.1", port, transport: "udp" }).close();
      }
      return port;
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrInUse)) throw err;
    }
  }
}

/**
 * `den init` for a throwaway node with unencrypted keys: on free loopback ports unless `ports`
 * says otherwise (e.g. fixed ports inside a network namespace). Returns the node's fingerprint.
 */
export async function initNode(
  home: string,
  name: string,
  extra: string[] = [],
  ports: { listen?: string; metrics?: string } = {},
) {
  const listen = ports.listen ?? `127.0.0.1:${freePort()}`;
  const metrics = ports.metrics ?? `127.0.0.1:${freePort()}`;
  const r = await den([
    "init",
    "--name",
    name,
    "--no-passphrase",
    "--listen",
    listen,
    "--metrics",
    metrics,
    "--home",
    home,
    ...extra,
  ]);
  if (r.code !== 0) throw new Error(`den init ${name} failed (${r.code}): ${r.stderr}`);
  const fingerprint: string =
    JSON.parse(await Deno.readTextFile(`${home}/identity.pub`)).fingerprint;
  return { listen, metrics, output: r.stdout, fingerprint };
}

/** A `den relay` child process on a free loopback port, up once /healthz answers. */
export async function startRelay(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = freePort();
  const child = denCommand(["relay", "--listen", `127.0.0.1:${port}`, "--metrics", "off"])
    .spawn();
  child.stdout.cancel();
  child.stderr.cancel();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
  };
  try {
    await waitFor(
      "den relay /healthz",
      () =>
        fetch(`http://127.0.0.1:${port}/healthz`).then(async (r) => {
          await r.body?.cancel();
          return r.ok;
        }, () => false),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `ws://127.0.0.1:${port}`, stop };
}
