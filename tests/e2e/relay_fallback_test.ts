/**
 * Relay fallback between network namespaces this test makes: alice and bob have no route to each
 * other, each reaches a relay in a third namespace. Their daemons form a session through it; the
 * relay's traffic, captured with tcpdump, holds no node name and no data they exchanged; when a
 * direct link appears the same session moves onto it.
 */
import assert from "node:assert/strict";
import { containsBytes } from "../../scripts/lib/tcp_proxy.ts";
import {
  DaemonProcess,
  den,
  denCommand,
  initNode,
  waitFor,
} from "../../scripts/lib/den_process.ts";
import { NetnsLab, netnsUnavailable } from "../../scripts/lib/netns.ts";
import type { PeerView } from "../../src/peer/view.ts";

const why = netnsUnavailable(["tcpdump"]);
if (why) console.warn(`SKIPPED relay fallback e2e: ${why}`);

const ALICE = "alice-e2e-node";
const BOB = "bob-e2e-node";
const SECRET = "TEST-SECRET-VALUE-7f3a9c";
const enc = new TextEncoder();

/** A node inside a namespace: the standard peer port, relayed through `relay`. */
async function init(home: string, name: string, relay: string): Promise<string> {
  const ports = { listen: "0.0.0.0:7834", metrics: "127.0.0.1:9000" };
  return (await initNode(home, name, ["--relay", relay], ports)).fingerprint;
}

async function peer(home: string, name: string): Promise<PeerView | undefined> {
  const r = await den(["peers", "--json", "--home", home]);
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as PeerView[]).find((p) => p.name === name);
}

async function words(home: string, name: string): Promise<string> {
  const r = await den(["peers", "verify", name, "--json", "--home", home]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).words.join(" ");
}

/** A child process whose stderr is collected (relay, tcpdump). */
function spawn(cmd: Deno.Command) {
  const child = cmd.spawn();
  let err = "";
  const done = (async () => {
    const dec = new TextDecoder();
    for await (const c of child.stderr) err += dec.decode(c, { stream: true });
  })();
  child.stdout.cancel();
  return {
    child,
    stderr: () => err,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* gone */ }
      await child.status;
      await done;
    },
  };
}

Deno.test({
  name: "relay e2e: no route between daemons → session through the relay, blind; moves to direct",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const lab = new NetnsLab();
    const dir = await Deno.makeTempDir({ prefix: "den-e2e-relay-" });
    const stops: (() => Promise<void>)[] = [];
    try {
      const nsR = await lab.ns("r"), nsA = await lab.ns("a"), nsB = await lab.ns("b");
      await lab.link(nsR, "10.77.1.1/24", nsA, "10.77.1.2/24");
      await lab.link(nsR, "10.77.2.1/24", nsB, "10.77.2.2/24");
      // The relay namespace does not forward (a fresh namespace never does): no A↔B route.
      assert.equal((await lab.exec(nsR, ["cat", "/proc/sys/net/ipv4/ip_forward"])).trim(), "0");

      const capture = `${dir}/relay.pcap`;
      const dump = spawn(
        new Deno.Command("ip", {
          args: [
            "netns",
            "exec",
            nsR,
            "tcpdump",
            "-i",
            "any",
            "-U",
            "-w",
            capture,
            "tcp port 8765",
          ],
          stdout: "piped",
          stderr: "piped",
        }),
      );
      stops.push(() => dump.stop("SIGINT"));
      await waitFor("tcpdump", () => Promise.resolve(/listening on/.test(dump.stderr())), 10_000);

      const relay = spawn(
        denCommand(["relay", "--listen", "0.0.0.0:8765", "--metrics", "off"], { netns: nsR }),
      );
      stops.push(() => relay.stop());
      await waitFor(
        "relay",
        async () =>
          (await lab.exec(nsA, ["bash", "-c", "exec 3<>/dev/tcp/10.77.1.1/8765"], { check: false })
            .then(() => true, () => false)) && /listening/.test(relay.stderr()),
      );

      const hA = `${dir}/alice`, hB = `${dir}/bob`;
      const fpA = await init(hA, ALICE, "ws://10.77.1.1:8765");
      const fpB = await init(hB, BOB, "ws://10.77.2.1:8765");
      // Each knows the other's fingerprint and a direct address that is not reachable yet.
      assert.equal(
        (await den(["add-peer", BOB, "10.77.3.2:7834", "--fingerprint", fpB, "--home", hA])).code,
        0,
      );
      assert.equal(
        (await den(["add-peer", ALICE, "10.77.3.1:7834", "--fingerprint", fpA, "--home", hB])).code,
        0,
      );

      const a = await DaemonProcess.start(hA, { netns: nsA });
      stops.push(() => a.stop());
      const b = await DaemonProcess.start(hB, { netns: nsB });
      stops.push(() => b.stop());

      await waitFor("session through the relay", async () => {
        const p = await peer(hA, BOB);
        return p?.state === "connected" && p.transport === "relay";
      }, 30_000);
      const viaRelay = (await peer(hA, BOB))!;
      assert.equal(viaRelay.fingerprint, fpB);
      assert.match(viaRelay.path ?? "", /^ws:\/\/10\.77\.1\.1:8765/);
      const seenByB = (await peer(hB, ALICE))!;
      assert.equal(seenByB.state, "connected");
      assert.equal(seenByB.transport, "relay");

      const ping = await den([
        "ping",
        BOB,
        "--count",
        "3",
        "--pattern",
        SECRET,
        "--size",
        "512",
        "--home",
        hA,
      ]);
      assert.equal(ping.code, 0, ping.stderr);
      assert.match(ping.stdout, new RegExp(`pong from ${BOB} via relay .*512 bytes`));
      assert.equal(ping.stdout.trim().split("\n").length, 3);
      const sas = await words(hA, BOB);
      assert.equal(await words(hB, ALICE), sas, "both ends see the same session");

      // What crossed the relay: the mailbox upgrade and ciphertext, nothing that names anyone.
      await dump.stop("SIGINT");
      const pcap = await Deno.readFile(capture);
      assert.ok(
        containsBytes(pcap, enc.encode("GET /v1/mailbox")),
        "the capture saw the relay traffic",
      );
      assert.ok(pcap.length > 20_000, `capture holds the sessions (${pcap.length} bytes)`);
      for (const secret of [ALICE, BOB, SECRET, SECRET.slice(0, 12)]) {
        assert.ok(!containsBytes(pcap, enc.encode(secret)), `"${secret}" crossed the relay`);
      }

      // A direct link appears: the session moves to it and keeps its identity (same SAS words).
      await lab.link(nsA, "10.77.3.1/24", nsB, "10.77.3.2/24");
      await waitFor("move to the direct path", async () => {
        const p = await peer(hA, BOB);
        return p?.state === "connected" && p.transport === "tcp";
      }, 45_000);
      assert.equal(await words(hA, BOB), sas, "the session moved, it was not replaced");
      assert.equal(await words(hB, ALICE), sas);
      assert.equal((await peer(hB, ALICE))?.transport, "tcp");
      const direct = await den(["ping", BOB, "--count", "1", "--home", hA]);
      assert.equal(direct.code, 0, direct.stderr);
      assert.match(direct.stdout, new RegExp(`pong from ${BOB} via tcp 10\\.77\\.3\\.2:\\d+`));
      assert.match(a.log, /peer session moved to a direct connection/);
    } finally {
      for (const stop of stops.reverse()) await stop().catch(() => {});
      await lab.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
