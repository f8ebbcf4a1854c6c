/**
 * Secrets benchmark, real daemons on loopback:
 *   1. set-to-visible-everywhere latency, p50/p99, with 5 and with 10 daemons;
 *   2. time for a new member to sync 10,000 ops;
 *   3. time to import 500 variables with 10 readers.
 * Each figure is printed next to its target and as a ratio to it; a peer-session round trip
 * (`den ping`) measured in the same run is printed as the floor the latency is made of.
 *
 *   deno run -A --unstable-net scripts/bench/secrets.ts [--rounds 40] [--ops 10000]
 */
import { parseArgs } from "node:util";
import type { IpcClient } from "../../src/ipc/client.ts";
import { den, waitFor } from "../lib/den_process.ts";
import { TeamCluster } from "../lib/team_cluster.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { rounds: { type: "string", default: "40" }, ops: { type: "string", default: "10000" } },
});
const ROUNDS = Number(values.rounds);
const SYNC_OPS = Number(values.ops);

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function line(what: string, got: number, target: number | null, unit: string): void {
  const figure = `${what.padEnd(44)} ${got.toFixed(1).padStart(8)} ${unit}`;
  if (target === null) return console.log(figure);
  const ratio = got / target;
  console.log(
    `${figure}   target ≤ ${target} ${unit}` +
      `   (${ratio.toFixed(2)}× of target${ratio <= 1 ? ", met" : ", MISSED"})`,
  );
}

async function get(c: IpcClient, key: string): Promise<string | null> {
  try {
    return ((await c.request("env.get", { team: "acme", key })) as { value: string }).value;
  } catch {
    return null;
  }
}

/** Sets a fresh value on a rotating node; ms until every other node reads it. */
async function latency(clients: IpcClient[]): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const writer = r % clients.length;
    const value = `v${r}-${crypto.randomUUID()}`;
    const t0 = performance.now();
    await clients[writer].request("env.set", { team: "acme", pairs: [["LATENCY", value]] });
    const pending = new Set(clients.keys());
    pending.delete(writer);
    while (pending.size > 0) {
      for (const i of [...pending]) {
        if (await get(clients[i], "LATENCY") === value) pending.delete(i);
      }
      if (performance.now() - t0 > 10_000) throw new Error(`round ${r}: not visible in 10 s`);
    }
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}

async function pingFloor(cluster: TeamCluster): Promise<number> {
  const r = await den([
    "ping",
    cluster.nodes[1].name,
    "-c",
    "5",
    "--json",
    "--home",
    cluster.nodes[0].home,
  ]);
  const rtts = (JSON.parse(r.stdout).results as { rtt_ms: number }[]).map((x) => x.rtt_ms).sort(
    (a, b) => a - b,
  );
  return rtts[Math.floor(rtts.length / 2)];
}

async function withCluster<T>(
  n: number,
  fn: (c: TeamCluster, clients: IpcClient[]) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "den-bench-secrets-" });
  const names = Array.from({ length: n }, (_, i) => `n${i}`);
  let cluster: TeamCluster | null = null;
  const clients: IpcClient[] = [];
  try {
    cluster = await TeamCluster.start(dir, names);
    await cluster.settled(60_000);
    for (let i = 0; i < n; i++) clients.push(await cluster.client(i));
    // Wait for the full mesh: every node's sessions to all others.
    await waitFor("full mesh", async () => {
      for (const c of clients) {
        const peers = await c.request("peers") as { state: string }[];
        if (peers.filter((p) => p.state === "connected").length < n - 1) return false;
      }
      return true;
    }, 60_000);
    return await fn(cluster, clients);
  } finally {
    for (const c of clients) c.close();
    await cluster?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

console.log(`den secrets benchmark (${ROUNDS} rounds per latency figure)\n`);

for (const n of [5, 10]) {
  await withCluster(n, async (cluster, clients) => {
    const floor = await pingFloor(cluster);
    const lat = await latency(clients);
    console.log(`${n} daemons: den ping round trip (median) ${floor.toFixed(2)} ms`);
    line(`set → visible on all ${n}: p50`, pct(lat, 50), 50, "ms");
    line(`set → visible on all ${n}: p99`, pct(lat, 99), null, "ms");
    if (n === 10) {
      const pairs = Array.from(
        { length: 500 },
        (_, i) => [`VAR_${i}`, `value-${i}-${"x".repeat(40)}`],
      );
      const t0 = performance.now();
      await clients[0].request("env.set", { team: "acme", env: "imported", pairs }, 60_000);
      line("import 500 variables, 10 readers", performance.now() - t0, 2000, "ms");
    }
    console.log();
  });
}

{
  const dir = await Deno.makeTempDir({ prefix: "den-bench-sync-" });
  let cluster: TeamCluster | null = null;
  try {
    cluster = await TeamCluster.start(dir, ["writer"]);
    const c = await cluster.client(0);
    const t0 = performance.now();
    for (let i = 0; i < SYNC_OPS; i++) {
      // One op per call: this is the shape a long history has.
      await c.request("env.set", { team: "acme", pairs: [[`K${i % 1000}`, `v${i}`]] });
      if (i % 2000 === 1999) await new Promise((r) => setTimeout(r, 0));
    }
    console.log(`wrote ${SYNC_OPS} ops in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    c.close();
    const { initNode, DaemonProcess } = await import("../lib/den_process.ts");
    const home = `${dir}/newcomer`;
    await initNode(home, "newcomer", [], { metrics: "off" });
    const d = await DaemonProcess.start(home);
    try {
      const code = JSON.parse(await cluster.cli(0, ["invite", "--team", "acme", "--json"])).code;
      const t1 = performance.now();
      const r = await den(["join", code, "--home", home]);
      if (r.code !== 0) throw new Error(r.stderr);
      const nc = await (await import("../../src/ipc/client.ts")).IpcClient.connect(
        `${home}/den.sock`,
      );
      try {
        await waitFor(`${SYNC_OPS} ops on the newcomer`, async () => {
          const s = await nc.request("status") as { counts: { ops: number } };
          return s.counts.ops >= SYNC_OPS;
        }, 120_000);
      } finally {
        nc.close();
      }
      line(
        `new member syncs ${SYNC_OPS} ops (join → all stored)`,
        (performance.now() - t1) / 1000,
        3,
        "s",
      );
    } finally {
      await d.stop();
    }
  } finally {
    await cluster?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
