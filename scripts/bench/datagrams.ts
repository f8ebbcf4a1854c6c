/**
 * `deno run -A --unstable-net scripts/bench/datagrams.ts`: how fast one process can receive
 * 1400-byte datagrams that another process sends it over loopback (127.0.0.1), three ways side
 * by side in one run, for the data plane's choice of transport (docs/DATAPLANE.md, "Transport"):
 *
 *   deno udp:         Deno.listenDatagram; the receiver awaits receive() one datagram at a time,
 *                     the sender keeps BURST send() calls in flight as fast as they complete.
 *   quic:             QUIC datagrams (Deno.QuicEndpoint server, Deno.connectQuic client, TLS with
 *                     a throwaway self-signed end-entity certificate for "localhost" made with
 *                     the openssl CLI and passed as the client's only extra CA); readDatagram()
 *                     one at a time, sendDatagram() with BURST in flight. Skipped without openssl.
 *   shim:             the VPN shim's batched UDP (src/vpn/tun/den_udp.c through
 *                     src/vpn/dataplane/ffi.ts): a 4 MiB socket, den_poll + den_udp_recv_batch
 *                     (64 per call, 2048-byte slots); the sender is den_udp_send_batch, 64 per call.
 *   shim ← deno send: the same shim receiver, fed by the deno udp sender, so that its receive side
 *                     is compared with Deno's under the same sender.
 *
 * Every sender and receiver is a process of its own (this script again, with --role). The sender
 * sends for SECS seconds and reports how many datagrams it sent; the receiver counts until 1 s
 * after the sender stopped (the parent then closes its stdin). QUIC sends 1400 bytes, or
 * maxDatagramSize when that is smaller after up to 1.5 s of path MTU discovery (printed). Each
 * method runs RUNS times, round robin; printed: every run, then per method min / median / max of
 * received datagrams/s (datagrams received ÷ time from the first to the last one received) and
 * of loss (1 − received / sent), and the medians' ratios to deno udp. A method that lost nothing
 * was limited by its sender: its received/s is a lower bound of what the receiver can take.
 *
 * Options: --runs N (3), --secs S (3), --only deno,quic,shim,shim-deno (all); about 50 s. Needs
 * the shim in dist/shim (built with scripts/build-shim when missing, which needs a C compiler).
 * Every child is killed when a step overruns its time limit; the exit status is non-zero only
 * when a run fails (a child crashes, hangs or reports an error), not when QUIC is skipped.
 */
import { fileURLToPath } from "node:url";
import {
  ADDRESS_RECORD,
  addressRecord,
  addressText,
  DATAPLANE_SYMBOLS,
} from "../../src/vpn/dataplane/ffi.ts";

const SIZE = 1400;
const BATCH = 64;
const SLOT = 2048;
const SOCKET_BUFFER = 4 << 20;
/** Sends kept in flight by the Deno senders (UDP and QUIC). */
const BURST = 32;
const TAIL_MS = 1000;
const ALPN = "den-bench";
const SCRIPT = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

// ---------------------------------------------------------------------------------------------
// Shared helpers

function args(): Map<string, string> {
  const out = new Map<string, string>();
  const a = Deno.args;
  for (let i = 0; i < a.length; i++) {
    if (!a[i].startsWith("--")) throw new Error(`unexpected argument: ${a[i]}`);
    const eq = a[i].indexOf("=");
    if (eq > 0) out.set(a[i].slice(2, eq), a[i].slice(eq + 1));
    else if (i + 1 < a.length) out.set(a[i].slice(2), a[++i]);
    else throw new Error(`${a[i]} needs a value`);
  }
  return out;
}

function num(opts: Map<string, string>, name: string, dflt?: number): number {
  const v = opts.get(name);
  if (v === undefined) {
    if (dflt === undefined) throw new Error(`--${name} is required`);
    return dflt;
  }
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: not a positive number: ${v}`);
  return n;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One JSON line on stdout: how children report to the parent. */
function emit(obj: Record<string, unknown>): void {
  console.log(JSON.stringify(obj));
}

/** Resolves when stdin reaches end of file: the parent's "stop". */
async function stdinEnds(): Promise<void> {
  const r = Deno.stdin.readable.getReader();
  try {
    while (!(await r.read()).done) { /* nothing is sent, only EOF */ }
  } catch {
    // a broken pipe means the parent is gone: stop as well
  }
}

function shimPath(): string {
  const os = Deno.build.os;
  const ext = os === "darwin" ? "dylib" : "so";
  return `${ROOT}dist/shim/libden_tun-${os}-${Deno.build.arch}.${ext}`;
}

function openShim() {
  return Deno.dlopen(shimPath(), DATAPLANE_SYMBOLS);
}

/** 127.0.0.1 port 0 as an address record (addressRecord refuses port 0). */
function anyPortRecord(): Uint8Array {
  const rec = addressRecord("127.0.0.1:1")!;
  rec[2] = 0;
  rec[3] = 0;
  return rec;
}

function payload(size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  for (let off = 0; off < size; off += 65536) {
    crypto.getRandomValues(out.subarray(off, Math.min(size, off + 65536)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Children: receivers print {"port"} once bound, then {"received", ...} once stdin ends;
// senders print {"sent", ...} after SECS seconds (QUIC keeps its connection until stdin ends).

interface Tally {
  received: number;
  bytes: number;
  first: number;
  last: number;
}

function tally(): Tally {
  return { received: 0, bytes: 0, first: 0, last: 0 };
}

function count(t: Tally, n: number, bytes: number): void {
  const now = performance.now();
  if (t.received === 0) t.first = now;
  t.last = now;
  t.received += n;
  t.bytes += bytes;
}

function report(t: Tally, extra: Record<string, unknown> = {}): void {
  emit({ received: t.received, bytes: t.bytes, spanMs: t.last - t.first, ...extra });
}

async function recvDeno(): Promise<void> {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  emit({ port: (conn.addr as Deno.NetAddr).port });
  const t = tally();
  const buf = new Uint8Array(SLOT);
  let stopping = false;
  const loop = (async () => {
    try {
      for (;;) {
        const [data] = await conn.receive(buf);
        count(t, 1, data.length);
      }
    } catch (e) {
      if (!stopping) throw e;
    }
  })();
  await Promise.race([stdinEnds(), loop]);
  stopping = true;
  conn.close();
  await loop;
  report(t);
}

async function recvQuic(opts: Map<string, string>): Promise<void> {
  const cert = Deno.readTextFileSync(opts.get("cert")!);
  const key = Deno.readTextFileSync(opts.get("key")!);
  const endpoint = new Deno.QuicEndpoint({ hostname: "127.0.0.1", port: 0 });
  const listener = endpoint.listen({ cert, key, alpnProtocols: [ALPN] });
  emit({ port: endpoint.addr.port });
  const t = tally();
  let stopping = false;
  let conn: Deno.QuicConn | undefined;
  const loop = (async () => {
    try {
      conn = await listener.accept();
      for (;;) {
        const data = await conn.readDatagram();
        count(t, 1, data.length);
      }
    } catch (e) {
      if (!stopping) throw e;
    }
  })();
  await Promise.race([stdinEnds(), loop]);
  stopping = true;
  conn?.close({ closeCode: 0, reason: "done" });
  listener.stop();
  endpoint.close();
  await loop;
  report(t);
}

function recvShim(opts: Map<string, string>): void {
  const limitMs = (num(opts, "secs") + 20) * 1000;
  const lib = openShim();
  const s = lib.symbols;
  const fd = s.den_udp_open(anyPortRecord(), SOCKET_BUFFER);
  if (fd < 0) throw new Error(`den_udp_open: errno ${-fd}`);
  const local = new Uint8Array(ADDRESS_RECORD);
  const rc = s.den_udp_local(fd, local);
  if (rc < 0) throw new Error(`den_udp_local: errno ${-rc}`);
  const port = Number(addressText(local).split(":").pop());
  emit({ port });
  // Synchronous throughout, as the data-plane worker is: den_poll watches the socket and stdin
  // (fd 0), whose end of file (POLLHUP) is the parent's "stop".
  const fds = Int32Array.of(fd, 0);
  const ready = new Uint8Array(2);
  const buf = new Uint8Array(BATCH * SLOT);
  const lens = new Uint32Array(BATCH);
  const addrs = new Uint8Array(BATCH * ADDRESS_RECORD);
  const t = tally();
  let calls = 0;
  const start = performance.now();
  for (;;) {
    const r = s.den_poll(fds, 2, 100, ready);
    if (r < 0) throw new Error(`den_poll: errno ${-r}`);
    if (ready[0] !== 0) {
      for (;;) {
        const n = s.den_udp_recv_batch(fd, buf, buf.length, lens, addrs, BATCH, SLOT);
        if (n < 0) throw new Error(`den_udp_recv_batch: errno ${-n}`);
        if (n === 0) break;
        calls++;
        let bytes = 0;
        for (let i = 0; i < n; i++) bytes += lens[i];
        count(t, n, bytes);
        if (n < BATCH) break;
      }
    }
    if (ready[1] !== 0 || performance.now() - start > limitMs) break;
  }
  s.den_close(fd);
  lib.close();
  report(t, { calls });
}

async function sendDeno(opts: Map<string, string>): Promise<void> {
  const port = num(opts, "port");
  const secs = num(opts, "secs");
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port };
  const data = payload(SIZE);
  let sent = 0;
  const start = performance.now();
  const end = start + secs * 1000;
  const inFlight: Promise<number>[] = new Array(BURST);
  while (performance.now() < end) {
    for (let i = 0; i < BURST; i++) inFlight[i] = conn.send(data, to);
    for (const n of await Promise.all(inFlight)) if (n === SIZE) sent++;
  }
  const elapsed = (performance.now() - start) / 1000;
  conn.close();
  emit({ sent, secs: elapsed, size: SIZE });
}

async function sendQuic(opts: Map<string, string>): Promise<void> {
  const port = num(opts, "port");
  const secs = num(opts, "secs");
  const ca = Deno.readTextFileSync(opts.get("ca")!);
  const conn = await Deno.connectQuic({
    hostname: "127.0.0.1",
    port,
    serverName: "localhost",
    caCerts: [ca],
    alpnProtocols: [ALPN],
  });
  await conn.handshake;
  // Path MTU discovery may still be raising the limit from its initial 1200-byte packets.
  const waitUntil = performance.now() + 1500;
  while (conn.maxDatagramSize < SIZE && performance.now() < waitUntil) await sleep(25);
  const max = conn.maxDatagramSize;
  const size = Math.min(SIZE, max);
  if (size <= 0) throw new Error(`the connection allows no datagrams (maxDatagramSize ${max})`);
  const data = payload(size);
  let sent = 0;
  const start = performance.now();
  const end = start + secs * 1000;
  const inFlight: Promise<void>[] = new Array(BURST);
  while (performance.now() < end) {
    for (let i = 0; i < BURST; i++) inFlight[i] = conn.sendDatagram(data);
    await Promise.all(inFlight);
    sent += BURST;
  }
  const elapsed = (performance.now() - start) / 1000;
  emit({ sent, secs: elapsed, size, maxDatagramSize: max });
  // Closing now could discard datagrams still queued: wait for the parent's stop.
  await Promise.race([stdinEnds(), sleep(30_000)]);
  conn.close({ closeCode: 0, reason: "done" });
  conn.endpoint.close();
}

function sendShim(opts: Map<string, string>): void {
  const port = num(opts, "port");
  const secs = num(opts, "secs");
  const lib = openShim();
  const s = lib.symbols;
  const fd = s.den_udp_open(anyPortRecord(), SOCKET_BUFFER);
  if (fd < 0) throw new Error(`den_udp_open: errno ${-fd}`);
  const to = addressRecord(`127.0.0.1:${port}`)!;
  const buf = payload(BATCH * SIZE);
  const lens = new Uint32Array(BATCH).fill(SIZE);
  const addrs = new Uint8Array(BATCH * ADDRESS_RECORD);
  for (let i = 0; i < BATCH; i++) addrs.set(to, i * ADDRESS_RECORD);
  let sent = 0;
  let calls = 0;
  let short = 0;
  const start = performance.now();
  const end = start + secs * 1000;
  while (performance.now() < end) {
    const n = s.den_udp_send_batch(fd, buf, lens, addrs, BATCH);
    if (n < 0) throw new Error(`den_udp_send_batch: errno ${-n}`);
    sent += n;
    calls++;
    if (n < BATCH) short++;
  }
  const elapsed = (performance.now() - start) / 1000;
  s.den_close(fd);
  lib.close();
  emit({ sent, secs: elapsed, size: SIZE, calls, shortBatches: short });
}

// ---------------------------------------------------------------------------------------------
// Parent

/** Children still running: all killed on the way out, whatever happens. */
const live = new Set<Child>();

class Child {
  readonly name: string;
  readonly #proc: Deno.ChildProcess;
  readonly #lines: string[] = [];
  #partial = "";
  #wake: (() => void) | null = null;
  #stdoutDone = false;
  #stderr = "";
  readonly status: Promise<Deno.CommandStatus>;

  constructor(name: string, role: string, extra: string[]) {
    this.name = name;
    this.#proc = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-net", "--quiet", SCRIPT, "--role", role, ...extra],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    live.add(this);
    this.status = this.#proc.status.finally(() => live.delete(this));
    this.#pumpStdout();
    this.#pumpStderr();
  }

  async #pumpStdout(): Promise<void> {
    try {
      for await (const chunk of this.#proc.stdout.pipeThrough(new TextDecoderStream())) {
        const parts = (this.#partial + chunk).split("\n");
        this.#partial = parts.pop()!;
        this.#lines.push(...parts.filter((l) => l.trim() !== ""));
        this.#wake?.();
      }
    } catch {
      // killed
    }
    this.#stdoutDone = true;
    this.#wake?.();
  }

  async #pumpStderr(): Promise<void> {
    try {
      for await (const chunk of this.#proc.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr = (this.#stderr + chunk).slice(-4000);
      }
    } catch {
      // killed
    }
  }

  /** The next JSON line the child prints, within timeoutMs. */
  async next(timeoutMs: number): Promise<Record<string, number>> {
    const deadline = Date.now() + timeoutMs;
    while (this.#lines.length === 0) {
      if (this.#stdoutDone) {
        const st = await Promise.race([this.status, sleep(2000).then(() => null)]);
        throw new Error(
          `${this.name} exited (${st ? `code ${st.code}` : "?"}) without reporting${this.#tail()}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`${this.name}: no report within ${timeoutMs} ms${this.#tail()}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = null;
    }
    const line = this.#lines.shift()!;
    try {
      return JSON.parse(line);
    } catch {
      throw new Error(`${this.name} printed something that is not a report: ${line}`);
    }
  }

  async closeStdin(): Promise<void> {
    await this.#proc.stdin.close().catch(() => {});
  }

  /** Waits for a clean exit within timeoutMs; kills and throws otherwise. */
  async exited(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const st = await Promise.race([
      this.status,
      new Promise<null>((r) => timer = setTimeout(() => r(null), timeoutMs)),
    ]);
    clearTimeout(timer);
    if (st === null) {
      this.kill();
      throw new Error(`${this.name} did not exit within ${timeoutMs} ms; killed`);
    }
    if (!st.success) throw new Error(`${this.name} failed (code ${st.code})${this.#tail()}`);
  }

  kill(): void {
    if (!live.has(this)) return;
    try {
      this.#proc.kill("SIGKILL");
    } catch {
      // already gone
    }
  }

  #tail(): string {
    const s = this.#stderr.trim();
    return s ? `\n  ${this.name} stderr: ${s.split("\n").slice(-8).join("\n  ")}` : "";
  }
}

/** The certificate's temp dir, removed on the way out. */
let tempDir: string | undefined;

function cleanUp(): void {
  for (const c of live) c.kill();
  if (tempDir) {
    try {
      Deno.removeSync(tempDir, { recursive: true });
    } catch {
      // already gone
    }
    tempDir = undefined;
  }
}

interface Method {
  id: string;
  label: string;
  recv: string;
  send: string;
}

const METHODS: Method[] = [
  { id: "deno", label: "deno udp", recv: "recv-deno", send: "send-deno" },
  { id: "quic", label: "quic", recv: "recv-quic", send: "send-quic" },
  { id: "shim", label: "shim", recv: "recv-shim", send: "send-shim" },
  { id: "shim-deno", label: "shim ← deno send", recv: "recv-shim", send: "send-deno" },
];

interface Run {
  sent: number;
  sentPerSec: number;
  received: number;
  recvPerSec: number;
  loss: number;
  size: number;
  maxDatagramSize?: number;
}

async function runOnce(m: Method, secs: number, extra: string[]): Promise<Run> {
  const recv = new Child(`${m.label} receiver`, m.recv, ["--secs", String(secs), ...extra]);
  let send: Child | undefined;
  try {
    const { port } = await recv.next(20_000);
    send = new Child(`${m.label} sender`, m.send, [
      "--port",
      String(port),
      "--secs",
      String(secs),
      ...extra,
    ]);
    const s = await send.next(secs * 1000 + 20_000);
    await sleep(TAIL_MS);
    await recv.closeStdin();
    const r = await recv.next(10_000);
    await send.closeStdin();
    await Promise.all([recv.exited(10_000), send.exited(10_000)]);
    const spanSecs = r.spanMs / 1000;
    return {
      sent: s.sent,
      sentPerSec: s.sent / s.secs,
      received: r.received,
      recvPerSec: spanSecs > 0 ? r.received / spanSecs : 0,
      loss: s.sent > 0 ? 1 - r.received / s.sent : 0,
      size: s.size,
      maxDatagramSize: s.maxDatagramSize,
    };
  } finally {
    send?.kill();
    recv.kill();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const kpps = (x: number) => `${(x / 1000).toFixed(1)}k`;
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

function spread(xs: number[], f: (x: number) => string): string {
  return `${f(Math.min(...xs))} / ${f(median(xs))} / ${f(Math.max(...xs))}`;
}

async function ensureShim(): Promise<string | null> {
  try {
    Deno.statSync(shimPath());
    return null;
  } catch {
    // build it
  }
  console.log(`shim: ${shimPath()} missing, running scripts/build-shim`);
  const out = await new Deno.Command("bash", {
    args: [`${ROOT}scripts/build-shim`],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output().catch((e) => ({ success: false, stderr: new TextEncoder().encode(String(e)) }));
  if (!out.success) return `build-shim failed: ${new TextDecoder().decode(out.stderr).trim()}`;
  try {
    Deno.statSync(shimPath());
    return null;
  } catch {
    return `build-shim did not produce ${shimPath()}`;
  }
}

/** A self-signed end-entity certificate for "localhost"; null and a reason when impossible. */
async function makeCert(dir: string): Promise<{ cert: string; key: string } | string> {
  const cert = `${dir}/c.pem`;
  const key = `${dir}/k.pem`;
  try {
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "subjectAltName=DNS:localhost",
        "-keyout",
        key,
        "-out",
        cert,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(20_000),
    }).output();
    if (!out.success) return `openssl failed: ${new TextDecoder().decode(out.stderr).trim()}`;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "openssl is not installed";
    return `openssl failed: ${e instanceof Error ? e.message : e}`;
  }
  return { cert, key };
}

function readSysctl(name: string): string {
  try {
    return Deno.readTextFileSync(`/proc/sys/net/core/${name}`).trim();
  } catch {
    return "?";
  }
}

async function parent(opts: Map<string, string>): Promise<number> {
  const runs = num(opts, "runs", 3);
  const secs = num(opts, "secs", 3);
  const only = new Set((opts.get("only") ?? METHODS.map((m) => m.id).join(",")).split(","));
  for (const id of only) {
    if (!METHODS.some((m) => m.id === id)) throw new Error(`--only: unknown method ${id}`);
  }
  const started = performance.now();
  console.log(
    `datagrams: ${SIZE}-byte datagrams over 127.0.0.1, sender and receiver in separate processes;` +
      ` ${runs} run(s) × ${secs} s of sending + ${TAIL_MS / 1000} s tail per method`,
  );
  console.log(
    `deno ${Deno.version.deno}, ${Deno.build.os}-${Deno.build.arch}, ` +
      `${navigator.hardwareConcurrency} cores, uid ${Deno.uid() ?? "?"}; net.core.rmem_default ` +
      `${readSysctl("rmem_default")}, rmem_max ${readSysctl("rmem_max")}`,
  );

  const skipped = new Map<string, string>();
  const extra: string[] = [];
  if (only.has("quic")) {
    tempDir = Deno.makeTempDirSync({ prefix: "den-bench-datagrams-" });
    const made = await makeCert(tempDir);
    if (typeof made === "string") skipped.set("quic", made);
    else extra.push("--cert", made.cert, "--key", made.key, "--ca", made.cert);
  }
  if (only.has("shim") || only.has("shim-deno")) {
    const why = await ensureShim();
    if (why) {
      skipped.set("shim", why);
      skipped.set("shim-deno", why);
    }
  }

  // Round robin (run 1 of every method, then run 2, ...) so that a slow spell of this shared
  // machine does not land on one method only.
  const active = METHODS.filter((m) => only.has(m.id));
  for (const m of active) {
    const why = skipped.get(m.id);
    if (why) console.log(`${m.label}: skipped (${why})`);
  }
  const todo = active.filter((m) => !skipped.has(m.id));
  const results = new Map<string, Run[]>(todo.map((m) => [m.id, []]));
  const width = Math.max(...todo.map((m) => m.label.length));
  let failures = 0;
  try {
    for (let i = 1; i <= runs; i++) {
      console.log(`\nround ${i} of ${runs}`);
      for (const m of todo) {
        const head = `  ${m.label.padEnd(width)}`;
        try {
          const r = await runOnce(m, secs, extra);
          results.get(m.id)!.push(r);
          console.log(
            `${head}  sent ${r.sent} (${kpps(r.sentPerSec)}/s, ${r.size} B), received ` +
              `${r.received} (${kpps(r.recvPerSec)}/s), lost ${pct(r.loss)}`,
          );
        } catch (e) {
          failures++;
          console.log(`${head}  FAILED: ${e instanceof Error ? e.message : e}`);
        }
      }
    }
  } finally {
    cleanUp();
  }
  const quic = results.get("quic");
  if (quic && quic.length > 0) {
    const sizes = [...new Set(quic.map((r) => r.size))].join(", ");
    const maxes = [...new Set(quic.map((r) => r.maxDatagramSize))].join(", ");
    console.log(
      `\nquic datagrams: ${sizes} B (maxDatagramSize ${maxes}; ` +
        (quic.every((r) => r.size === SIZE)
          ? `${SIZE} fits)`
          : `smaller than ${SIZE}: sent at the maximum)`),
    );
  }

  console.log(`\nsummary (${runs} run(s) each; received datagrams/s and loss: min / median / max)`);
  const rows: string[][] = [["method", "sent/s (median)", "received/s", "loss"]];
  for (const m of METHODS) {
    if (!only.has(m.id)) continue;
    const rs = results.get(m.id);
    if (!rs || rs.length === 0) {
      rows.push([m.label, "-", skipped.has(m.id) ? "skipped" : "failed", "-"]);
      continue;
    }
    rows.push([
      m.label,
      kpps(median(rs.map((r) => r.sentPerSec))),
      spread(rs.map((r) => r.recvPerSec), kpps),
      spread(rs.map((r) => r.loss), pct),
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const [i, r] of rows.entries()) {
    console.log("  " + r.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd());
    if (i === 0) console.log("  " + widths.map((w) => "-".repeat(w)).join("  "));
  }
  const base = results.get("deno");
  const ratios: string[] = [];
  if (base && base.length > 0) {
    const b = median(base.map((r) => r.recvPerSec));
    for (
      const [id, label] of [["shim", "shim"], ["shim-deno", "shim ← deno send"], ["quic", "quic"]]
    ) {
      const rs = results.get(id);
      if (!rs || rs.length === 0 || b <= 0) continue;
      const loss = median(rs.map((r) => r.loss));
      ratios.push(
        `  ${label} / deno udp: ${(median(rs.map((r) => r.recvPerSec)) / b).toFixed(1)}×` +
          (loss < 0.001 ? "  (lost nothing: its sender was the limit, so a lower bound)" : ""),
      );
    }
  }
  if (ratios.length > 0) {
    console.log(["\nmedian received/s relative to deno udp", ...ratios].join("\n"));
  }
  console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (failures > 0) console.log(`${failures} run(s) failed`);
  return failures > 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const opts = args();
  const role = opts.get("role");
  switch (role) {
    case undefined:
      return await parent(opts);
    case "recv-deno":
      await recvDeno();
      return 0;
    case "recv-quic":
      await recvQuic(opts);
      return 0;
    case "recv-shim":
      recvShim(opts);
      return 0;
    case "send-deno":
      await sendDeno(opts);
      return 0;
    case "send-quic":
      await sendQuic(opts);
      return 0;
    case "send-shim":
      sendShim(opts);
      return 0;
    default:
      throw new Error(`unknown role ${role}`);
  }
}

if (import.meta.main) {
  const isParent = !Deno.args.includes("--role");
  if (isParent) {
    const onInt = () => {
      cleanUp();
      Deno.exit(130);
    };
    Deno.addSignalListener("SIGINT", onInt);
    Deno.addSignalListener("SIGTERM", onInt);
  }
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    console.error(`datagrams: ${e instanceof Error ? e.stack ?? e.message : e}`);
    cleanUp();
  }
  Deno.exit(code);
}
