/**
 * `deno run -A --unstable-net scripts/bench/session.ts`: peer-session cost, beside references
 * measured in the same run.
 *   handshake: full 3-message handshake in one process (both ends), median and per second;
 *   throughput: one TCP stream on loopback from a Worker to the main thread, raw bytes versus den
 *   records (sealed there, opened here), as a ratio.
 */
import { generateIdentity } from "../../src/identity/keys.ts";
import { MAX_RECORD_FRAME, runResponder } from "../../src/peer/session_conn.ts";
import { InitiatorHandshake, ResponderHandshake } from "../../src/session/handshake.ts";
import { MAX_RECORD_PAYLOAD, RecordSender } from "../../src/session/record.ts";
import { FramedConn } from "../../src/transport/framed.ts";

const TOTAL = Number(Deno.env.get("BENCH_MB") ?? 512) * 1024 * 1024;
const HANDSHAKES = Number(Deno.env.get("BENCH_HANDSHAKES") ?? 300);

const alice = await generateIdentity("alice");
const bob = await generateIdentity("bob");

/** One full handshake, both ends in this thread; returns the time of each step and the total. */
async function handshakeOnce(): Promise<number[]> {
  const i = new InitiatorHandshake({ identity: alice, teams: [], now: Date.now });
  const r = new ResponderHandshake({ identity: bob, teams: [], now: Date.now });
  const t0 = performance.now();
  const m1 = await i.start();
  const t1 = performance.now();
  const m2 = await r.respond(m1);
  const t2 = performance.now();
  const { reply } = await i.finish(m2);
  const t3 = performance.now();
  await r.finish(reply);
  const t4 = performance.now();
  return [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0];
}

for (let k = 0; k < 20; k++) await handshakeOnce(); // warm up
const steps: number[][] = [[], [], [], [], []];
const hsStart = performance.now();
for (let k = 0; k < HANDSHAKES; k++) (await handshakeOnce()).forEach((t, j) => steps[j].push(t));
const hsPerS = HANDSHAKES / ((performance.now() - hsStart) / 1000);
for (const xs of steps) xs.sort((a, b) => a - b);
const median = (xs: number[]) => xs[Math.floor(xs.length / 2)];

async function stream(mode: "raw" | "session"): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const worker = new Worker(new URL("./session_sender.ts", import.meta.url), { type: "module" });
  const done = new Promise((r) => worker.onmessage = r);
  worker.postMessage({ mode, port: (listener.addr as Deno.NetAddr).port, total: TOTAL });
  const conn = await listener.accept();
  const t0 = performance.now();
  let got = 0;
  if (mode === "raw") {
    const buf = new Uint8Array(256 * 1024);
    while (got < TOTAL) {
      const n = await conn.read(buf);
      if (n === null) break;
      got += n;
    }
  } else {
    const framed = new FramedConn(conn);
    const est = await runResponder(framed, { identity: bob, teams: [], now: Date.now }, 10_000);
    while (got < TOTAL) {
      const frame = await framed.read(MAX_RECORD_FRAME);
      if (frame === null) break;
      got += est.receiver.open(frame).payload.length;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  conn.close();
  await done;
  worker.terminate();
  listener.close();
  if (got !== TOTAL) throw new Error(`${mode}: received ${got} of ${TOTAL} bytes`);
  return TOTAL / seconds;
}

/** Sealing alone on one core: the most a single sending thread can carry, whatever the socket. */
function sealCeiling(): number {
  const sender = new RecordSender(new Uint8Array(32).fill(7), { now: Date.now() });
  const chunk = new Uint8Array(MAX_RECORD_PAYLOAD);
  const n = Math.max(200, Math.floor(TOTAL / MAX_RECORD_PAYLOAD / 4));
  const t0 = performance.now();
  for (let k = 0; k < n; k++) sender.seal(16, chunk, Date.now());
  return n * MAX_RECORD_PAYLOAD / ((performance.now() - t0) / 1000);
}

const ceiling = sealCeiling();
const raw = await stream("raw");
const session = await stream("session");
const raw2 = await stream("raw"); // again, so a noisy neighbour shows up as a spread
const mbs = (x: number) => `${(x / 1e6).toFixed(0)} MB/s`;
console.log(`deno ${Deno.version.deno}, ${Deno.build.target}, ${TOTAL / 2 ** 20} MiB per stream`);
const total = steps[4];
console.log(
  `handshake: median ${median(total).toFixed(2)} ms, ` +
    `p90 ${total[Math.floor(total.length * 0.9)].toFixed(2)} ms, ${hsPerS.toFixed(0)}/s ` +
    `(both ends in one thread)`,
);
console.log(
  `  median per step: initiator start ${median(steps[0]).toFixed(2)} ms, responder respond ` +
    `${median(steps[1]).toFixed(2)} ms, initiator finish ${median(steps[2]).toFixed(2)} ms, ` +
    `responder finish ${median(steps[3]).toFixed(2)} ms`,
);
console.log(`raw TCP:        ${mbs(raw)} / ${mbs(raw2)}`);
console.log(`den session:    ${mbs(session)}`);
console.log(`record sealing alone, one core: ${mbs(ceiling)}`);
console.log(`ratio session/raw: ${(session / Math.max(raw, raw2)).toFixed(2)} (best raw)`);
console.log(`ratio session/sealing ceiling: ${(session / ceiling).toFixed(2)}`);
