/**
 * The direct UDP data plane (docs/DATAPLANE.md) end to end, between two network namespaces a and
 * b joined by one veth link, each running a daemon on 0.0.0.0:7834 with network "office":
 *
 * - the path to the peer becomes "udp", pings travel in UDP datagrams (seen with tcpdump on the
 *   link) and their payload is not visible there (while it is on the TUN interface);
 * - a replayed datagram, a tampered one (fresh counter, one ciphertext byte flipped) and one
 *   with an unknown receiver index are dropped and counted (`replayed`, `auth_failed`,
 *   `unknown_slot`), and pings still answer;
 * - UDP blocked both ways with iptables: the path falls back to the TCP session within ~1.6 s and
 *   pings keep answering; unblocked: back to UDP;
 * - the peer's daemon restarted: the direct path comes back with the new session's keys;
 * - scripts/bench/vpn.sh is there and parses.
 */
import assert from "node:assert/strict";
import { den, denCommand, initNode, waitFor } from "../../scripts/lib/den_process.ts";
import { NetnsLab } from "../../scripts/lib/netns.ts";
import type { PeerView } from "../../src/peer/view.ts";
import type { VpnStatus } from "../../src/vpn/vpn_service.ts";
import {
  childEnv,
  json,
  type Logged,
  nsRun,
  ping,
  ROOT,
  spawnLogged,
  tail,
  timed,
  unavailable,
} from "../support/vpn_e2e.ts";

const LABEL = "vpn dataplane e2e";
const PORT = 7834;
const OFFICE = "100.81.0.0/24";
const LINK = { a: "10.71.0.1", b: "10.71.0.2" } as const;
const OVERLAY = { a: "100.81.0.1", b: "100.81.0.2" } as const;
type NodeName = keyof typeof LINK;
/** What the pings carry (`ping -p`): must show on the TUN, never on the wire. */
const PATTERN = "deadbeefcafef00d";
/** A counter far ahead of anything sent, still below 2^48: not a replay, not malformed. */
const FRESH_COUNTER = 0x0000_0000_7fff_0000n;
const HEADER = 13;
const KIND_DATA = 1;

const why = await unavailable(["ping", "tcpdump", "iptables", "timeout", "bash"]);
if (why) console.warn(`SKIPPED ${LABEL}: ${why}`);

interface Node {
  name: NodeName;
  ns: string;
  home: string;
  fingerprint: string;
  daemon: Logged | null;
  /** Logs of its earlier daemons (restarts). */
  pastLogs: string;
}

/** One IPv4 packet from `tcpdump -x`, with its UDP payload when it is a whole UDP datagram. */
interface Captured {
  src: string;
  dst: string;
  srcPort: number | null;
  dstPort: number | null;
  /** The whole UDP payload; null for fragments, truncated or non-UDP packets. */
  payload: Uint8Array | null;
  hex: string;
}

/** Parses `tcpdump -n -x` output (hex from the IP header on) into packets. */
function parseDump(text: string): Captured[] {
  const packets: string[] = [];
  for (const line of text.split("\n")) {
    const hex = /^\s+0x[0-9a-f]+:\s+([0-9a-f ]+)$/.exec(line);
    if (hex && packets.length > 0) packets[packets.length - 1] += hex[1].replace(/\s+/g, "");
    else if (/^\S/.test(line)) packets.push("");
  }
  return packets.filter((h) => h.length >= 40).map((hex) => {
    const b = Uint8Array.fromHex(hex);
    const ihl = (b[0] & 0x0f) * 4;
    const total = (b[2] << 8) | b[3];
    const frag = (b[6] << 8) | b[7];
    const ip = (o: number) => [...b.subarray(o, o + 4)].join(".");
    const isUdp = b[0] >> 4 === 4 && b[9] === 17 && (frag & 0x1fff) === 0;
    const port = (o: number) => isUdp && b.length >= ihl + 8 ? (b[o] << 8) | b[o + 1] : null;
    const udpLen = port(ihl + 4);
    const whole = isUdp && (frag & 0x2000) === 0 && b.length === total &&
      udpLen === total - ihl;
    return {
      src: ip(12),
      dst: ip(16),
      srcPort: port(ihl),
      dstPort: port(ihl + 2),
      payload: whole ? b.slice(ihl + 8) : null,
      hex,
    };
  });
}

/** Whether the ping pattern shows, byte aligned and in any rotation, in a packet's hex. */
function showsPattern(hex: string): boolean {
  for (let r = 0; r < PATTERN.length; r += 2) {
    const needle = PATTERN.slice(r) + PATTERN.slice(0, r);
    for (let at = hex.indexOf(needle); at >= 0; at = hex.indexOf(needle, at + 1)) {
      if (at % 2 === 0) return true;
    }
  }
  return false;
}

function pingCounts(out: string): { sent: number; received: number } {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  assert.ok(m, `no ping summary in:\n${out}`);
  return { sent: Number(m[1]), received: Number(m[2]) };
}

/** A background command (ping, tcpdump) whose output is kept; stopped in the end. */
interface Background {
  child: Deno.ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Waits for the end (after `signal`, if given): what it printed. */
  finish(signal?: Deno.Signal): Promise<{ code: number; stdout: string; stderr: string }>;
}

function background(argv: string[]): Background {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: childEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "", err = "";
  const read = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
    const dec = new TextDecoder();
    for await (const c of s) add(dec.decode(c, { stream: true }));
  };
  const done = Promise.all([
    read(child.stdout, (t) => out += t),
    read(child.stderr, (t) => err += t),
  ]);
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async finish(signal?: Deno.Signal) {
      if (signal) {
        try {
          child.kill(signal);
        } catch { /* gone */ }
      }
      const status = await child.status;
      await done;
      return { code: status.code, stdout: out, stderr: err };
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function seconds(fromMs: number): string {
  return ((performance.now() - fromMs) / 1000).toFixed(1);
}

Deno.test({
  name:
    "vpn dataplane e2e: direct UDP path, encryption, replay and forgery, fallback to TCP, restart",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const started = performance.now();
    const lab = new NetnsLab();
    const dir = await Deno.makeTempDir({ prefix: "den-e2e-dataplane-" });
    const nodes = {} as Record<NodeName, Node>;
    const running = new Set<Background>();
    /** iptables rules inserted: [namespace, rule] to delete in the end. */
    const rules: [string, string[]][] = [];
    let veth = "";

    const log = (msg: string) => console.log(`${LABEL}: ${msg}`);

    /** Logs, paths, drops and firewall of both nodes: appended to every failure. */
    async function diagnostics(): Promise<string> {
      const parts: string[] = [];
      for (const n of Object.values(nodes)) {
        const status = await den(["vpn", "status", "--json", "--home", n.home]);
        const peers = await den(["peers", "--json", "--home", n.home]);
        const fw = await nsRun(n.ns, ["iptables", "-S", "INPUT"]);
        parts.push(
          `--- ${n.name}: den vpn status --json\n${
            status.stdout.trim() || status.stderr.trim()
          }\n` +
            `--- ${n.name}: den peers --json\n${peers.stdout.trim() || peers.stderr.trim()}\n` +
            `--- ${n.name}: iptables -S INPUT\n${fw.out.trim()}\n` +
            `--- ${n.name}: daemon log (tail)\n${tail(n.pastLogs + (n.daemon?.log() ?? ""), 60)}`,
        );
      }
      return parts.join("\n");
    }

    /** A step whose failure carries the diagnostics; false when it failed. */
    function step(name: string, fn: () => Promise<void>): Promise<boolean> {
      return t.step(name, async () => {
        try {
          await timed(name, fn, LABEL);
        } catch (err) {
          const msg = err instanceof Error ? err.message : String(err);
          throw new Error(`${msg}\n=== diagnostics ===\n${await diagnostics()}`, { cause: err });
        }
      });
    }

    /** Starts `den daemon` for a node inside its namespace; up once `den status` answers. */
    async function startDaemon(n: Node): Promise<void> {
      if (n.daemon) n.pastLogs += n.daemon.log();
      const d = n.daemon = spawnLogged(denCommand(["daemon", "--home", n.home], { netns: n.ns }));
      await waitFor(`${n.name}'s daemon`, async () => {
        if (d.exited()) throw new Error(`${n.name}'s daemon exited:\n${d.log()}`);
        return (await den(["status", "--home", n.home])).code === 0;
      }).catch((err) => {
        throw new Error(`${err.message}\n--- its log\n${tail(d.log())}`);
      });
    }

    async function peerOf(n: Node, name: string): Promise<PeerView | undefined> {
      return (await json<PeerView[]>(n.home, ["peers"]))?.find((p) => p.name === name);
    }

    async function vpnStatus(n: Node): Promise<VpnStatus> {
      const s = await json<VpnStatus>(n.home, ["vpn", "status"]);
      assert.ok(s, `den vpn status --json on ${n.name} failed`);
      return s;
    }

    /** Waits until a's data path to b is `path`; how long it took (ms). */
    async function dataPathIs(path: string, timeoutMs: number, nudge = false): Promise<number> {
      const t0 = performance.now();
      let last: string | null | undefined;
      await waitFor(`a's data_path to b = ${path}`, async () => {
        // Traffic, so that a path that depends on it has some.
        if (nudge) await nsRun(nodes.a.ns, ["ping", "-n", "-c", "1", "-W", "1", OVERLAY.b]);
        last = (await peerOf(nodes.a, "b"))?.data_path;
        return last === path;
      }, timeoutMs).catch((err) => {
        throw new Error(`${err.message} (last seen: ${last})`);
      });
      return performance.now() - t0;
    }

    /** tcpdump in a namespace, listening once this resolves; `finish("SIGINT")` ends it. */
    async function tcpdump(
      ns: string,
      iface: string,
      filter: string[],
      count: number,
    ): Promise<Background> {
      const bg = background([
        "ip",
        "netns",
        "exec",
        ns,
        "timeout",
        "-s",
        "INT",
        "15",
        "tcpdump",
        "-n",
        "-l",
        "-U",
        "-x",
        "-i",
        iface,
        "-c",
        String(count),
        ...filter,
      ]);
      running.add(bg);
      let exited = false;
      bg.child.status.then(() => exited = true);
      await waitFor(`tcpdump on ${iface} listening`, () => {
        if (exited) throw new Error(`tcpdump on ${iface} exited: ${bg.stderr()}`);
        return Promise.resolve(bg.stderr().includes("listening on"));
      }, 5_000);
      return bg;
    }

    /** Stops a tcpdump; the packets it saw. */
    async function packets(bg: Background): Promise<Captured[]> {
      const r = await bg.finish("SIGINT");
      running.delete(bg);
      return parseDump(r.stdout);
    }

    /** `ping -c COUNT -i 0.2` a → b's office address, in the background. */
    function pingRun(count: number, extra: string[] = []): Background {
      const bg = background([
        "ip",
        "netns",
        "exec",
        nodes.a.ns,
        "ping",
        "-n",
        "-c",
        String(count),
        "-i",
        "0.2",
        "-W",
        "1",
        ...extra,
        OVERLAY.b,
      ]);
      running.add(bg);
      return bg;
    }

    async function lost(bg: Background): Promise<{ sent: number; lost: number; out: string }> {
      const r = await bg.finish();
      running.delete(bg);
      const c = pingCounts(r.stdout);
      return { sent: c.sent, lost: c.sent - c.received, out: r.stdout };
    }

    async function block(ns: string): Promise<void> {
      const rule = ["INPUT", "-p", "udp", "--dport", String(PORT), "-j", "DROP"];
      await lab.exec(ns, ["iptables", "-I", ...rule]);
      rules.push([ns, rule]);
    }

    async function unblockAll(): Promise<void> {
      for (const [ns, rule] of rules.splice(0)) {
        await lab.exec(ns, ["iptables", "-D", ...rule], { check: false });
      }
    }

    try {
      if (
        !await step("namespaces, nodes, daemons, sessions", async () => {
          for (const name of ["a", "b"] as const) {
            nodes[name] = {
              name,
              ns: await lab.ns(name),
              home: `${dir}/${name}`,
              fingerprint: "",
              daemon: null,
              pastLogs: "",
            };
          }
          const a = nodes.a, b = nodes.b;
          await lab.link(a.ns, `${LINK.a}/24`, b.ns, `${LINK.b}/24`);
          const addrs = await lab.exec(a.ns, ["ip", "-o", "-4", "addr", "show"]);
          veth = /^\d+:\s+(\S+)\s+inet 10\.71\.0\.1\//m.exec(addrs)?.[1] ?? "";
          assert.ok(veth, `no veth with ${LINK.a} in a:\n${addrs}`);
          const direct = await ping(a.ns, LINK.b, 1);
          assert.ok(direct.ok, `a cannot reach b on the link:\n${direct.out}`);

          for (const n of [a, b]) {
            n.fingerprint = (await initNode(n.home, n.name, [], {
              listen: `0.0.0.0:${PORT}`,
              metrics: "off",
            })).fingerprint;
          }
          for (const n of [a, b]) {
            const p = n === a ? b : a;
            await Deno.writeTextFile(
              `${n.home}/config.toml`,
              `\n[[peers]]\nname = "${p.name}"\naddress = "${LINK[p.name]}:${PORT}"\n` +
                `fingerprint = "${p.fingerprint}"\n` +
                `\n[networks.office]\nprefix = "${OFFICE}"\naddress = "${OVERLAY[n.name]}"\n`,
              { append: true },
            );
          }
          await timed("daemons started", async () => {
            for (const n of [a, b]) await startDaemon(n);
          }, LABEL);
          await timed(
            "sessions a↔b connected",
            () =>
              waitFor("both sessions connected", async () => {
                const ab = await peerOf(a, "b"), ba = await peerOf(b, "a");
                return ab?.state === "connected" && ba?.state === "connected";
              }, 20_000),
            LABEL,
          );
          for (const n of [a, b]) {
            const s = await vpnStatus(n);
            const office = s.networks.find((x) => x.name === "office");
            assert.equal(office?.address, `${OVERLAY[n.name]}/24`, JSON.stringify(s));
            assert.equal(s.dataplane?.error ?? null, null, JSON.stringify(s.dataplane));
            assert.equal(s.dataplane?.udp, `0.0.0.0:${PORT}`, JSON.stringify(s.dataplane));
          }
        })
      ) return;

      if (
        !await step("the path becomes UDP, pings travel in it, encrypted", async () => {
          const a = nodes.a;
          const ms = await dataPathIs("udp", 10_000, true);
          log(`a's data_path to b is udp after ${(ms / 1000).toFixed(1)} s`);
          const s = await vpnStatus(a);
          const pb = s.dataplane?.peers.find((p) => p.peer === "b");
          assert.equal(pb?.path, "udp", JSON.stringify(s.dataplane));
          assert.equal(pb?.endpoint, `${LINK.b}:${PORT}`, JSON.stringify(s.dataplane));
          log(`a → b probe rtt ${pb?.rtt_ms} ms, batched ${pb?.batched}`);

          // The wire (the veth) and the TUN, side by side, while a pings b with the pattern.
          const wire = await tcpdump(a.ns, veth, ["udp", "port", String(PORT)], 400);
          const tun = await tcpdump(a.ns, "den-office", ["icmp"], 100);
          const r = await nsRun(a.ns, [
            "ping",
            "-n",
            "-c",
            "5",
            "-i",
            "0.2",
            "-W",
            "2",
            "-s",
            "120",
            "-p",
            PATTERN,
            OVERLAY.b,
          ]);
          await sleep(300);
          const onWire = await packets(wire), onTun = await packets(tun);
          assert.ok(r.ok, `ping a → b:\n${r.out}`);
          assert.equal(pingCounts(r.out).received, 5, r.out);

          const data = (from: string, to: string) =>
            onWire.filter((p) =>
              p.src === from && p.dst === to && p.dstPort === PORT &&
              p.payload?.[0] === KIND_DATA
            ).length;
          const ab = data(LINK.a, LINK.b), ba = data(LINK.b, LINK.a);
          log(
            `on the veth: ${onWire.length} UDP packets, data datagrams a → b ${ab}, b → a ${ba}; ` +
              `on den-office: ${onTun.length} ICMP packets`,
          );
          assert.ok(ab >= 5 && ba >= 5, `5 echo requests and replies in UDP data datagrams`);
          assert.ok(onTun.length >= 10, `tcpdump on den-office saw ${onTun.length} packets`);
          assert.ok(
            onTun.some((p) => showsPattern(p.hex)),
            "the pattern shows in the clear on the TUN (so the check below can see it)",
          );
          const clear = onWire.filter((p) => showsPattern(p.hex));
          assert.equal(
            clear.length,
            0,
            `the ping pattern is visible on the wire:\n${clear[0]?.hex}`,
          );
        })
      ) return;

      if (
        !await step("replayed, tampered and misaddressed datagrams are dropped", async () => {
          const a = nodes.a, b = nodes.b;
          const wire = await tcpdump(
            a.ns,
            veth,
            ["udp", "dst", "port", String(PORT), "and", "src", "host", LINK.a],
            40,
          );
          const r = await ping(a.ns, OVERLAY.b, 5);
          await sleep(200);
          const seen = await packets(wire);
          assert.ok(r.ok, r.out);
          const original = seen.find((p) =>
            p.dst === LINK.b && p.payload && p.payload[0] === KIND_DATA &&
            p.payload.length > HEADER + 16
          )?.payload;
          assert.ok(original, `no whole data datagram a → b among ${seen.length} captured`);

          const tampered = original.slice();
          new DataView(tampered.buffer).setBigUint64(5, FRESH_COUNTER);
          tampered[HEADER + 5] ^= 0x01;
          const misaddressed = original.slice();
          const index = (d: Uint8Array) => d.subarray(1, 5).toHex();
          while (index(misaddressed) === index(original)) {
            crypto.getRandomValues(misaddressed.subarray(1, 5));
          }
          log(
            `replaying a ${original.length}-byte datagram (index ${index(original)}, counter ${
              new DataView(original.buffer).getBigUint64(5)
            })`,
          );

          const drops = async () => (await vpnStatus(b)).dataplane?.drops ?? {};
          const before = await drops();
          const send = await nsRun(a.ns, [
            Deno.execPath(),
            "run",
            "--quiet",
            "--allow-net",
            "--unstable-net",
            `${ROOT}tests/support/udp_send.ts`,
            LINK.b,
            String(PORT),
            original.toHex(),
            tampered.toHex(),
            misaddressed.toHex(),
          ]);
          assert.ok(send.ok, `udp_send.ts:\n${send.out}`);

          const kinds = ["replayed", "auth_failed", "unknown_slot"];
          let after: Record<string, number> = {};
          const more = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
          await waitFor("b counting the three drops", async () => {
            after = await drops();
            return kinds.every((k) => more(k) >= 1);
          }, 5_000).catch((err) => {
            throw new Error(
              `${err.message}: before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`,
            );
          });
          log(`b's drops: ${kinds.map((k) => `${k} +${more(k)}`).join(", ")}`);

          const still = await ping(a.ns, OVERLAY.b, 3);
          assert.ok(still.ok, `ping a → b after the forgeries:\n${still.out}`);
          assert.equal((await peerOf(a, "b"))?.data_path, "udp");
        })
      ) return;

      if (
        !await step("UDP blocked: the path falls back to TCP; unblocked: back to UDP", async () => {
          const a = nodes.a, b = nodes.b;
          await block(b.ns);
          await block(a.ns);
          const blockedAt = performance.now();
          const during = pingRun(40);
          const downMs = await dataPathIs("tcp", 5_000);
          log(`UDP blocked: a's data_path to b is tcp after ${(downMs / 1000).toFixed(1)} s`);
          const d = await lost(during);
          log(`UDP blocked: ping a → b lost ${d.lost} of ${d.sent} (${seconds(blockedAt)} s)`);
          assert.equal(d.sent, 40, d.out);
          assert.ok(d.lost <= 12, `lost ${d.lost} of 40 while the path switched:\n${d.out}`);
          assert.equal((await peerOf(a, "b"))?.data_path, "tcp", "still tcp while blocked");

          await unblockAll();
          const after = pingRun(20);
          const upMs = await dataPathIs("udp", 5_000);
          log(`UDP unblocked: a's data_path to b is udp after ${(upMs / 1000).toFixed(1)} s`);
          const u = await lost(after);
          log(`UDP unblocked: ping a → b lost ${u.lost} of ${u.sent}`);
          assert.equal(u.sent, 20, u.out);
          assert.ok(u.lost <= 5, `lost ${u.lost} of 20 after unblocking:\n${u.out}`);
          const pb = (await vpnStatus(a)).dataplane?.peers.find((p) => p.peer === "b");
          assert.equal(pb?.endpoint, `${LINK.b}:${PORT}`, JSON.stringify(pb));
        })
      ) return;

      if (
        !await step("b's daemon restarted: the direct path comes back", async () => {
          const a = nodes.a, b = nodes.b;
          const d = b.daemon!;
          const t0 = performance.now();
          try {
            d.child.kill("SIGTERM");
          } catch { /* gone */ }
          let timer: ReturnType<typeof setTimeout> | undefined;
          const status = await Promise.race([
            d.child.status,
            new Promise<null>((r) => timer = setTimeout(() => r(null), 10_000)),
          ]);
          clearTimeout(timer);
          if (!status) await d.stop("SIGKILL");
          assert.ok(status, "b's daemon did not exit within 10 s of SIGTERM");
          log(`b's daemon exited (code ${status.code}) after ${seconds(t0)} s`);
          await d.stop();
          await waitFor("a seeing b gone", async () => {
            const p = await peerOf(a, "b");
            return p?.state !== "connected" && (p?.data_path ?? null) === null;
          }, 10_000);

          const t1 = performance.now();
          await startDaemon(b);
          const t2 = performance.now();
          const ms = await dataPathIs("udp", 20_000);
          log(
            `b restarted: its daemon answered after ${((t2 - t1) / 1000).toFixed(1)} s, ` +
              `a's data_path to b udp again ${(ms / 1000).toFixed(1)} s later ` +
              `(${seconds(t1)} s from the restart)`,
          );
          const r = await lost(pingRun(20));
          log(`after the restart: ping a → b lost ${r.lost} of ${r.sent}`);
          assert.equal(r.sent, 20, r.out);
          assert.ok(r.lost <= 3, `lost ${r.lost} of 20 after the restart:\n${r.out}`);
          const s = await vpnStatus(a);
          const pb = s.dataplane?.peers.find((p) => p.peer === "b");
          assert.equal(pb?.path, "udp", JSON.stringify(s.dataplane));
          assert.equal(pb?.endpoint, `${LINK.b}:${PORT}`, JSON.stringify(pb));
        })
      ) return;

      await step("scripts/bench/vpn.sh is there, executable, and parses", async () => {
        const path = `${ROOT}scripts/bench/vpn.sh`;
        const st = await Deno.stat(path);
        assert.ok(st.isFile && ((st.mode ?? 0) & 0o111) !== 0, `${path} is not executable`);
        const out = await new Deno.Command("bash", { args: ["-n", path], stderr: "piped" })
          .output();
        assert.ok(out.success, `bash -n ${path}: ${new TextDecoder().decode(out.stderr)}`);
      });
    } finally {
      for (const bg of running) await bg.finish("SIGTERM").catch(() => {});
      await unblockAll().catch(() => {});
      for (const n of Object.values(nodes)) await n.daemon?.stop().catch(() => {});
      await lab.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      console.log(`${LABEL}: total ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
  },
});
