/**
 * `deno run --unstable-net --allow-all scripts/bench/relay.ts`: `den relay` beside a minimal
 * reference relay on the `ws` npm package under Node (reference_relay.mjs), measured in one run.
 *
 *   forwarding: a sender and a receiver (each a Worker, relay_client.ts) authenticate on
 *     /v1/mailbox (CHALLENGE, AUTH signed with a real identity, READY); the sender streams SEND
 *     frames to the receiver's mailbox and the receiver counts DELIVERs over a fixed window after
 *     a warm-up. 1 KiB payloads, and 64 KiB WebSocket messages (payload 65,503 + 33-byte header).
 *     Two kinds of client, RUNS runs each, den and reference alternating:
 *       websocket: Deno's WebSocket; the sender pauses while its bufferedAmount is over 1 MiB;
 *       raw: hand-made RFC 6455 frames over TCP, batched, so the clients cost little and the
 *         relay gets a core of its own even on a 2-core machine.
 *     Both senders also stop at 2 MiB sent but not yet delivered (a shared counter), so no relay
 *     queue grows without bound and den's slow-consumer limit (4 MiB) never ends a run.
 *     Besides msgs/s, the relay's CPU time per message: it holds when the clients, not the relay,
 *     are the limit (see the relay CPU column) and when other work shares the machine.
 *   idle: IDLE connections on the rooms path, each JOINed to its own room (confirmed by the 404 that
 *     a SIGNAL gets while alone), then the relay's resident memory (VmRSS).
 *
 * Env: BENCH_RUNS (3), BENCH_WARMUP_MS (500), BENCH_WINDOW_MS (3000), BENCH_IDLE (5000),
 * BENCH_WS_BUFFERUTIL=0 (reference without ws's native masking), BENCH_RELAY_PROF=DIR (the
 * forwarding den relay under --cpu-prof, all runs in one profile written to DIR at the end).
 * Needs node and npm: installs ws and bufferutil, pinned and not saved, in
 * $XDG_CACHE_HOME/den-bench or /tmp/den-bench-cache.
 */
import { denArgv, denCommand, freePort, waitFor } from "../lib/den_process.ts";
import { MAX_MAILBOX_PAYLOAD } from "../../src/wire/relay_mailbox.ts";
import {
  type ClientKind,
  COUNTERS,
  FAILED,
  type Job,
  RECEIVED,
  type Report,
  type SendStats,
  SENT,
  STOP,
} from "./relay_client.ts";

const WS_VERSION = "8.18.3";
/** ws's optional native (un)masking; BENCH_WS_BUFFERUTIL=0 measures ws without it. */
const BUFFERUTIL_VERSION = "4.1.0";
const BUFFERUTIL = Deno.env.get("BENCH_WS_BUFFERUTIL") !== "0";
const RUNS = Number(Deno.env.get("BENCH_RUNS") ?? 3);
const WARMUP_MS = Number(Deno.env.get("BENCH_WARMUP_MS") ?? 500);
const WINDOW_MS = Number(Deno.env.get("BENCH_WINDOW_MS") ?? 3000);
const IDLE = Number(Deno.env.get("BENCH_IDLE") ?? 5000);
const PROF_DIR = Deno.env.get("BENCH_RELAY_PROF");
const MAX_BUFFERED = 1024 * 1024;
const IN_FLIGHT_BYTES = 2 * 1024 * 1024;
const TIME_LIMIT_MS = 170_000;
const SIZES = [
  { label: "1 KiB", payload: 1024 },
  { label: "64 KiB", payload: MAX_MAILBOX_PAYLOAD }, // a 65,536-byte WebSocket message
];
const TARGET_RATE_1K = 100_000;
const TARGET_IDLE_MB = 200;

const started = performance.now();
const dec = new TextDecoder();

// ---------------------------------------------------------------------------------------------
// Child processes: every one is registered here and killed on the way out, whatever happens.

class Relay {
  readonly pid: number;
  #log = "";
  readonly #drained: Promise<void>;
  readonly exited: Promise<Deno.CommandStatus>;
  #done = false;

  /** `readyLine`: the relay is ready once its output matches (else: once it accepts TCP). */
  constructor(
    readonly name: string,
    readonly port: number,
    readonly child: Deno.ChildProcess,
    readonly readyLine?: RegExp,
  ) {
    this.pid = child.pid;
    this.exited = child.status.finally(() => this.#done = true);
    const drain = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s) {
        if (this.#log.length < 64 * 1024) this.#log += dec.decode(chunk, { stream: true });
      }
    };
    this.#drained = Promise.all([drain(child.stdout), drain(child.stderr)]).then(() => {});
    children.add(this);
  }

  /** The process has ended (a relay that crashed mid-run). */
  get exitedEarly(): boolean {
    return this.#done;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get log(): string {
    return this.#log;
  }

  async ready(): Promise<void> {
    await waitFor(`${this.name} on port ${this.port}`, async () => {
      if (this.#done) throw new Error(`${this.name} exited early:\n${this.#log}`);
      if (this.readyLine) return this.readyLine.test(this.#log);
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: this.port })).close();
        return true;
      } catch {
        return false;
      }
    });
  }

  /** SIGTERM first (so a CPU profile gets written), SIGKILL after a grace period. */
  async stop(graceMs = 0): Promise<void> {
    if (!this.#done) {
      try {
        this.child.kill(graceMs > 0 ? "SIGTERM" : "SIGKILL");
      } catch { /* gone */ }
      if (graceMs > 0) {
        const t = setTimeout(() => {
          try {
            this.child.kill("SIGKILL");
          } catch { /* gone */ }
        }, graceMs);
        await this.exited;
        clearTimeout(t);
      }
    }
    await this.exited;
    await this.#drained;
    children.delete(this);
  }
}

const children = new Set<Relay>();
const workers = new Set<Worker>();

async function cleanup(): Promise<void> {
  for (const w of workers) w.terminate();
  workers.clear();
  await Promise.all([...children].map((c) => c.stop()));
}

function startDen(extra: string[] = []): Relay {
  const port = freePort();
  const args = ["relay", "--listen", `127.0.0.1:${port}`, "--metrics", "off", ...extra];
  let cmd = denCommand(args);
  if (PROF_DIR) {
    // denCommand's command line with the profiler on.
    const [deno, run, ...rest] = denArgv(args);
    cmd = new Deno.Command(deno, {
      args: [run, "--cpu-prof", `--cpu-prof-dir=${PROF_DIR}`, ...rest],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
  }
  return new Relay("den relay", port, cmd.spawn());
}

function cacheDir(): string {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  return xdg ? `${xdg}/den-bench` : "/tmp/den-bench-cache";
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout).trim();
}

/** ws and bufferutil, pinned, in the cache folder (installed once, not saved in the repository). */
async function ensureWs(): Promise<string> {
  const dir = cacheDir();
  const want = { ws: WS_VERSION, bufferutil: BUFFERUTIL_VERSION };
  const installed = () =>
    Object.entries(want).every(([name, version]) => {
      try {
        const pkg = `${dir}/node_modules/${name}/package.json`;
        return JSON.parse(Deno.readTextFileSync(pkg)).version === version;
      } catch {
        return false;
      }
    });
  if (!installed()) {
    Deno.mkdirSync(dir, { recursive: true });
    await run("npm", [
      "install",
      "--no-save",
      "--no-audit",
      "--no-fund",
      "--prefix",
      dir,
      ...Object.entries(want).map(([name, version]) => `${name}@${version}`),
    ]);
    if (!installed()) throw new Error(`could not install ws and bufferutil in ${dir}`);
  }
  return `${dir}/node_modules`;
}

function startReference(nodePath: string): Relay {
  const port = freePort();
  const script = new URL("./reference_relay.mjs", import.meta.url).pathname;
  const child = new Deno.Command("node", {
    args: [script, String(port)],
    env: BUFFERUTIL ? { NODE_PATH: nodePath } : { NODE_PATH: nodePath, WS_NO_BUFFER_UTIL: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return new Relay(`reference (ws)`, port, child, /^listening /m);
}

// ---------------------------------------------------------------------------------------------
// /proc readings.

function rssMB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
  return kb / 1024;
}

/** CPU seconds (user + system) a process has used so far, all threads. */
function cpuSeconds(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime; CLK_TCK 100 on Linux
}

// ---------------------------------------------------------------------------------------------
// Forwarding.

/** One mailbox client in a Worker; `next` waits for its next report. */
class Client {
  readonly worker = new Worker(new URL("./relay_client.ts", import.meta.url), { type: "module" });
  /** What the worker reported as failures (also thrown by a pending `next`). */
  readonly errors: string[] = [];
  #reports: Report[] = [];
  #waiting: ((r: Report) => void) | undefined;

  constructor(readonly role: string) {
    workers.add(this.worker);
    this.worker.onmessage = (e: MessageEvent<Report>) => this.#report(e.data);
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.#report({ type: "error", message: `worker: ${e.message}` });
    };
  }

  #report(r: Report): void {
    if (r.type === "error") this.errors.push(`${this.role}: ${r.message}`);
    const w = this.#waiting;
    this.#waiting = undefined;
    if (w) w(r);
    else if (r.type !== "error") this.#reports.push(r);
  }

  post(job: Job): void {
    this.worker.postMessage(job);
  }

  async next<T extends Report["type"]>(type: T, timeoutMs = 10_000) {
    const r = this.#reports.shift() ?? await new Promise<Report>((resolve) => {
      const t = setTimeout(
        () => resolve({ type: "error", message: `no "${type}" in ${timeoutMs} ms` }),
        timeoutMs,
      );
      this.#waiting = (r) => {
        clearTimeout(t);
        resolve(r);
      };
    });
    if (r.type !== type) {
      throw new Error(`${this.role}: ${r.type === "error" ? r.message : `got ${r.type}`}`);
    }
    return r as Extract<Report, { type: T }>;
  }

  terminate(): void {
    this.worker.terminate();
    workers.delete(this.worker);
  }
}

interface Sample {
  rate: number; // messages per second at the receiver
  relayCpu: number; // share of one core the relay process used in the window
  clientCpu: number; // share of one core this process (both client workers) used
  sender: SendStats; // over the whole run, warm-up included
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One run: connect both clients, stream, count over the window, close. */
async function forward(
  relay: Relay,
  kind: ClientKind,
  payload: number,
  sender: Client,
  receiver: Client,
): Promise<Sample> {
  const shared = new SharedArrayBuffer(COUNTERS * 4);
  const counters = new Int32Array(shared);
  const failed = () => Atomics.load(counters, FAILED) !== 0;
  const url = `${relay.url}/v1/mailbox`;
  receiver.post({ cmd: "connect", kind, url, counters: shared });
  sender.post({ cmd: "connect", kind, url, counters: shared });
  try {
    const dst = (await receiver.next("ready")).id;
    const src = (await sender.next("ready")).id;
    receiver.post({ cmd: "receive", src, payload });
    sender.post({ cmd: "send", dst, payload, maxBuffered: MAX_BUFFERED, window: IN_FLIGHT_BYTES });
    await waitFor("the first DELIVER", () => {
      if (failed()) throw new Error("a client failed");
      return Promise.resolve(Atomics.load(counters, RECEIVED) > 0);
    }, 10_000);
    await sleep(WARMUP_MS);
    const c0 = Atomics.load(counters, RECEIVED);
    const t0 = performance.now();
    const r0 = cpuSeconds(relay.pid);
    const s0 = cpuSeconds("self");
    await sleep(WINDOW_MS);
    const c1 = Atomics.load(counters, RECEIVED);
    const t1 = performance.now();
    const r1 = cpuSeconds(relay.pid);
    const s1 = cpuSeconds("self");
    Atomics.store(counters, STOP, 1);
    const stats = await sender.next("stopped");
    if (failed()) throw new Error("a client failed");
    const seconds = (t1 - t0) / 1000;
    return {
      rate: (c1 - c0) / seconds,
      relayCpu: (r1 - r0) / seconds,
      clientCpu: (s1 - s0) / seconds,
      sender: stats,
    };
  } catch (err) {
    const why = (relay.exitedEarly ? "the relay process has exited; " : "") +
      ([...receiver.errors, ...sender.errors].join("; ") ||
        (err instanceof Error ? err.message : String(err)));
    throw new Error(
      `${relay.name}, ${kind} client, payload ${payload}: ${why} ` +
        `(sent ${Atomics.load(counters, SENT)}, received ${Atomics.load(counters, RECEIVED)})` +
        (relay.log ? `\nrelay log:\n${relay.log.slice(-2000)}` : ""),
    );
  } finally {
    Atomics.store(counters, STOP, 1);
    sender.post({ cmd: "close" });
    receiver.post({ cmd: "close" });
    await Promise.allSettled([sender.next("closed"), receiver.next("closed")]);
  }
}

// ---------------------------------------------------------------------------------------------
// Idle connections.

interface IdleResult {
  baseMB: number;
  loadedMB: number;
  seconds: number;
  opened: number;
  lost: number;
}

async function idle(relay: Relay, n: number): Promise<IdleResult> {
  await sleep(300);
  const baseMB = rssMB(relay.pid);
  const sockets: WebSocket[] = [];
  let lost = 0;
  let next = 0;
  const t0 = performance.now();
  const one = (i: number) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`${relay.url}/`);
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error(`connection ${i}: no answer in 20 s`));
      }, 20_000);
      const failed = (why: string) => {
        clearTimeout(timer);
        reject(new Error(`connection ${i}: ${why}`));
      };
      ws.onopen = () => {
        ws.send(JSON.stringify({ type: "JOIN", room: `IDLE${String(i).padStart(8, "0")}` }));
        ws.send(JSON.stringify({ type: "SIGNAL", kind: "MSG", payload: "x" }));
      };
      ws.onerror = (e) => failed(`error ${(e as ErrorEvent).message ?? ""}`);
      ws.onclose = (e) => failed(`closed ${e.code} ${e.reason}`);
      ws.onmessage = (e) => {
        const m = JSON.parse(String(e.data));
        if (m.type !== "ERROR" || m.code !== 404) return failed(`unexpected ${e.data}`);
        clearTimeout(timer);
        // Joined and alone: from now on nothing should arrive and nothing should close.
        ws.onmessage = null;
        ws.onerror = null;
        ws.onclose = () => lost++;
        resolve(ws);
      };
    });
  let broken = false;
  const lane = async () => {
    try {
      while (next < n && !broken) sockets.push(await one(next++));
    } catch (err) {
      broken = true;
      throw err;
    }
  };
  try {
    await Promise.all(Array.from({ length: 64 }, lane));
    const seconds = (performance.now() - t0) / 1000;
    await sleep(1000);
    const loadedMB = rssMB(relay.pid);
    return { baseMB, loadedMB, seconds, opened: sockets.length, lost };
  } finally {
    for (const ws of sockets) {
      ws.onclose = null;
      ws.close();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
const int = (x: number) => Math.round(x).toLocaleString("en-US");
const col = (s: string, n: number) => s.padStart(n);
const fixed2 = (x: number) => Number.isFinite(x) ? x.toFixed(2) : "n/a";

const KINDS: { kind: ClientKind; about: string }[] = [
  {
    kind: "websocket",
    about: `Deno WebSocket clients (sender pauses at bufferedAmount > ${MAX_BUFFERED >> 20} MiB)`,
  },
  { kind: "raw", about: "raw-frame TCP clients (pre-masked SENDs in 256 KiB writes)" },
];

type Outcome = Sample | { error: string };
const ok = (o: Outcome): o is Sample => !("error" in o);

/** The table for one kind of client; returns den/reference of the median rates, per size. */
function table(kind: ClientKind, relays: Relay[], results: Map<string, Outcome[]>) {
  console.log(
    `${"size".padEnd(7)}${"relay".padEnd(22)}${col("min msg/s", 10)}${col("median", 10)}` +
      `${col("max", 10)}${col("MB/s", 6)}${col("relay CPU", 10)}${col("µs/msg", 8)}` +
      `${col("clients", 9)}${col("sender paused", 20)}`,
  );
  const ratios = new Map<string, { rate: number; cost: number }>();
  for (const size of SIZES) {
    const rows: { rate: number; cost: number }[] = [];
    for (const relay of relays) {
      const all = results.get(`${kind}/${size.label}/${relay.name}`) ?? [];
      const xs = all.filter(ok);
      const lead = `${size.label.padEnd(7)}${relay.name.padEnd(22)}`;
      const failures = all.length - xs.length;
      if (xs.length === 0) {
        console.log(`${lead}  every run failed`);
        rows.push({ rate: NaN, cost: NaN });
        continue;
      }
      const rates = xs.map((s) => s.rate);
      const m = median(rates);
      const mid = xs.find((s) => s.rate === m)!;
      const cost = mid.relayCpu / m * 1e6; // relay CPU µs per forwarded message
      const snd = mid.sender;
      const paused = kind === "websocket"
        ? `${pct(snd.waitBuffered / snd.seconds)} buf ${pct(snd.waitWindow / snd.seconds)} win`
        : `${pct(snd.waitWindow / snd.seconds)} win`;
      rows.push({ rate: m, cost });
      console.log(
        `${lead}${col(int(Math.min(...rates)), 10)}${col(int(m), 10)}` +
          `${col(int(Math.max(...rates)), 10)}${col((m * size.payload / 1e6).toFixed(0), 6)}` +
          `${col(pct(mid.relayCpu), 10)}${col(cost.toFixed(1), 8)}${col(pct(mid.clientCpu), 9)}` +
          `${col(paused, 20)}` + (failures ? `  (${failures} of ${all.length} runs FAILED)` : ""),
      );
    }
    ratios.set(size.label, {
      rate: rows[0].rate / rows[1].rate,
      cost: rows[1].cost / rows[0].cost,
    });
  }
  console.log(
    `ratio den/reference, median msgs/s: ` +
      [...ratios].map(([label, r]) => `${label} ${fixed2(r.rate)}`).join(", ") +
      `; relay CPU per message, reference/den: ` +
      [...ratios].map(([label, r]) => `${label} ${fixed2(r.cost)}`).join(", "),
  );
  return ratios;
}

/** Re-runs this script under a raised `ulimit -n` when the soft limit is too low for IDLE. */
async function ensureFileLimit(need: number): Promise<void> {
  const limits = Deno.readTextFileSync("/proc/self/limits");
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  const soft = m?.[1] === "unlimited" ? Infinity : Number(m?.[1]);
  const hard = m?.[2] === "unlimited" ? Infinity : Number(m?.[2]);
  if (soft >= need) return;
  if (Deno.env.get("DEN_BENCH_REEXEC") || hard < need) {
    throw new Error(
      `open files limit ${soft} (hard ${hard}) is below the ${need} the idle test needs: ` +
        `raise it (ulimit -n ${need}) or set BENCH_IDLE lower`,
    );
  }
  // Relays and clients inherit the limit from this process, so raise it here, for everything.
  const status = await new Deno.Command("sh", {
    args: [
      "-c",
      `ulimit -n ${need} && exec "$@"`,
      "sh",
      Deno.execPath(),
      "run",
      "--unstable-net",
      "--allow-all",
      Deno.mainModule,
      ...Deno.args,
    ],
    env: { DEN_BENCH_REEXEC: "1" },
  }).spawn().status;
  Deno.exit(status.code);
}

async function main(): Promise<void> {
  await ensureFileLimit(IDLE + 1024);
  const deadline = setTimeout(() => {
    console.error(`relay bench: over ${TIME_LIMIT_MS / 1000} s, giving up`);
    cleanup().finally(() => Deno.exit(2));
  }, TIME_LIMIT_MS);
  Deno.unrefTimer(deadline);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => cleanup().finally(() => Deno.exit(130)));
  }

  const nodePath = await ensureWs();
  const nodeVersion = await run("node", ["--version"]);
  const den = startDen();
  const ref = startReference(nodePath);
  await Promise.all([den.ready(), ref.ready()]);
  const relays = [den, ref];

  const bufferutil = /bufferutil=(\w+)/.exec(ref.log)?.[1] === "yes";
  console.log(
    `deno ${Deno.version.deno}, node ${nodeVersion}, reference: ws ${WS_VERSION} ` +
      (bufferutil ? `with bufferutil ${BUFFERUTIL_VERSION}` : "without bufferutil") +
      `, ${Deno.build.target}, ` +
      `${navigator.hardwareConcurrency} cores, load average ` +
      Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" "),
  );
  console.log(
    `forwarding sender → relay → receiver (each client a Worker): ${RUNS} runs per relay, size ` +
      `and client, den and reference alternating; ${WARMUP_MS} ms warm-up, ${WINDOW_MS} ms ` +
      `window; at most ${IN_FLIGHT_BYTES >> 20} MiB sent but undelivered`,
  );

  let sender = new Client("sender");
  let receiver = new Client("receiver");
  const results = new Map<string, Outcome[]>();
  for (const { kind } of KINDS) {
    for (const size of SIZES) {
      for (let k = 0; k < RUNS; k++) {
        for (const relay of relays) {
          const key = `${kind}/${size.label}/${relay.name}`;
          let outcome: Outcome;
          try {
            outcome = await forward(relay, kind, size.payload, sender, receiver);
          } catch (err) {
            const error = err instanceof Error ? err.message : String(err);
            console.error(`run FAILED: ${error}`);
            outcome = { error };
            Deno.exitCode = 1;
            // Fresh workers: the old ones may still hold the failed run's state.
            sender.terminate();
            receiver.terminate();
            sender = new Client("sender");
            receiver = new Client("receiver");
          }
          results.set(key, [...(results.get(key) ?? []), outcome]);
        }
      }
    }
  }
  sender.terminate();
  receiver.terminate();
  await Promise.all(relays.map((r) => r.stop(PROF_DIR ? 5000 : 0)));

  const ratios = new Map<ClientKind, Map<string, { rate: number; cost: number }>>();
  for (const { kind, about } of KINDS) {
    console.log();
    console.log(`${about}:`);
    ratios.set(kind, table(kind, relays, results));
  }
  console.log(
    `(MB/s: payload; relay CPU: share of one core in the window; µs/msg: relay CPU time per ` +
      `message;\n clients: this process, both workers; sender paused: share of the run spent ` +
      `waiting on bufferedAmount (buf) / the undelivered window (win))`,
  );

  console.log();
  const idleDen = startDen(["--max-conns-per-ip", "10000", "--max-conns", "20000"]);
  const idleRef = startReference(nodePath);
  await Promise.all([idleDen.ready(), idleRef.ready()]);
  const idleResults: [Relay, IdleResult | { error: string }][] = [];
  for (const relay of [idleDen, idleRef]) {
    try {
      idleResults.push([relay, await idle(relay, IDLE)]);
    } catch (err) {
      idleResults.push([relay, { error: err instanceof Error ? err.message : String(err) }]);
    }
    await relay.stop();
  }
  for (const [relay, r] of idleResults) {
    if ("error" in r) {
      console.log(`idle: ${relay.name} FAILED: ${r.error}`);
      Deno.exitCode = 1;
      continue;
    }
    console.log(
      `idle: ${int(r.opened)} room connections to ${relay.name} in ${r.seconds.toFixed(1)} s: ` +
        `RSS ${r.baseMB.toFixed(0)} MB before, ${r.loadedMB.toFixed(0)} MB with them ` +
        `(${((r.loadedMB - r.baseMB) * 1024 / r.opened).toFixed(1)} KB each)` +
        (r.lost ? `, ${r.lost} closed while idle` : ""),
    );
  }

  const mark = (met: boolean) => met ? "met" : "NOT MET";
  const rate1k = (kind: ClientKind) => {
    const xs = (results.get(`${kind}/1 KiB/${den.name}`) ?? []).filter(ok).map((s) => s.rate);
    return xs.length ? median(xs) : NaN;
  };
  console.log();
  console.log("targets (den relay):");
  for (const { kind } of KINDS) {
    const r = ratios.get(kind)!;
    const values = SIZES.map((s) => r.get(s.label)!.rate);
    console.log(
      `  ${kind} clients: den/reference >= 1.0: ` +
        SIZES.map((s, i) => `${s.label} ${fixed2(values[i])}`).join(", ") +
        `  ${mark(values.every((v) => v >= 1))};  >= ${int(TARGET_RATE_1K)} msgs/s at 1 KiB: ` +
        `${Number.isFinite(rate1k(kind)) ? int(rate1k(kind)) : "n/a"}  ` +
        mark(rate1k(kind) >= TARGET_RATE_1K),
    );
  }
  const d = idleResults[0][1];
  console.log(
    `  ${int(IDLE)} idle connections under ${TARGET_IDLE_MB} MB RSS: ` +
      ("error" in d ? "FAILED" : `${d.loadedMB.toFixed(0)} MB  ` +
        mark(d.opened === IDLE && d.lost === 0 && d.loadedMB < TARGET_IDLE_MB)),
  );
  console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
  clearTimeout(deadline);
}

try {
  await main();
} finally {
  await cleanup();
}
