/**
 * NAT traversal end to end (docs/NAT.md), in the layout of /work/shared/netlab/natlab.sh: a "net"
 * namespace (the internet) with den relay on 10.211.0.254, and two homes, each behind its own
 * NAT namespace (nft MASQUERADE, NEW inbound forwards dropped, NEW inbound to the NAT itself
 * dropped in INPUT). The daemons in the homes know each other only by fingerprint and the relay;
 * their sessions run through it.
 *
 * - cone NATs (plain masquerade): the reflector shows the same mapping on both ports, the offers
 *   carry it, both sides probe it: the VPN path becomes direct UDP between the two NATs' public
 *   addresses, and pings go that way.
 * - symmetric NATs (masquerade random,fully-random): the mappings differ per destination, the
 *   path stays on the relay, `den peers` says why, and pings still work.
 */
import assert from "node:assert/strict";
import { den, denCommand, initNode, waitFor } from "../../scripts/lib/den_process.ts";
import { NetnsLab } from "../../scripts/lib/netns.ts";
import type { PeerView } from "../../src/peer/view.ts";
import type { VpnStatus } from "../../src/vpn/vpn_service.ts";
import {
  json,
  type Logged,
  nsRun,
  ping,
  spawnLogged,
  tail,
  timed,
  unavailable,
} from "../support/vpn_e2e.ts";

const LABEL = "nat e2e";
const RELAY_IP = "10.211.0.254";
const RELAY_PORT = 8765;
const PEER_PORT = 7834;
const PREFIX = "100.82.0.0/24";
const SITES = [1, 2] as const;
type Site = (typeof SITES)[number];
const overlay = (i: Site) => `100.82.0.${i}`;
const publicIp = (i: Site) => `10.211.${i}.1`;

const why = await unavailable(["ping", "nft", "timeout"]);
if (why) console.warn(`SKIPPED ${LABEL}: ${why}`);

interface Home {
  site: Site;
  name: string;
  ns: string;
  home: string;
  fingerprint: string;
  daemon: Logged | null;
}

/** The interface of `ns` that has address `ip` (NetnsLab names veths at random). */
async function ifaceWith(lab: NetnsLab, ns: string, ip: string): Promise<string> {
  const out = await lab.exec(ns, ["ip", "-o", "-4", "addr", "show"]);
  const name = new RegExp(`^\\d+:\\s+(\\S+)\\s+inet ${ip.replaceAll(".", "\\.")}/`, "m")
    .exec(out)?.[1];
  assert.ok(name, `no interface with ${ip} in ${ns}:\n${out}`);
  return name.split("@")[0];
}

/** natlab.sh's NAT rules, with this lab's interface names. */
function natRules(lan: string, wan: string, symmetric: boolean): string {
  const masq = symmetric ? "masquerade random,fully-random" : "masquerade";
  return `table ip natlab {
  chain nat_post { type nat hook postrouting priority srcnat; policy accept;
    oifname "${wan}" counter ${masq}
  }
  chain filter_fwd { type filter hook forward priority filter; policy drop;
    ct state established,related counter accept
    iifname "${lan}" oifname "${wan}" counter accept
  }
  chain filter_in { type filter hook input priority filter; policy accept;
    iifname "${wan}" icmp type echo-request accept
    iifname "${wan}" ct state new counter drop
  }
}
`;
}

/** `ip netns exec NS nft -f -` with the rules on stdin. */
async function nft(ns: string, rules: string): Promise<void> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, "nft", "-f", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(rules));
  await w.close();
  const out = await child.output();
  assert.ok(out.success, `nft in ${ns}: ${new TextDecoder().decode(out.stderr)}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One lab (net, two NATs, two homes), the relay and two daemons; `fn` runs the checks. */
async function withLab(
  symmetric: boolean,
  fn: (h: Record<Site, Home>, daemonsUp: number) => Promise<void>,
): Promise<void> {
  const lab = new NetnsLab();
  const dir = await Deno.makeTempDir({ prefix: "den-e2e-nat-" });
  const homes = {} as Record<Site, Home>;
  let relay: Logged | null = null;
  const diagnostics = async () => {
    const parts = [`--- relay log\n${tail(relay?.log() ?? "", 20)}`];
    for (const h of Object.values(homes)) {
      const peers = await den(["peers", "--json", "--home", h.home]);
      const vpn = await den(["vpn", "status", "--json", "--home", h.home]);
      parts.push(
        `--- ${h.name}: den peers --json\n${peers.stdout.trim() || peers.stderr.trim()}\n` +
          `--- ${h.name}: den vpn status --json\n${vpn.stdout.trim() || vpn.stderr.trim()}\n` +
          `--- ${h.name}: daemon log\n${tail(h.daemon?.log() ?? "", 40)}`,
      );
    }
    return parts.join("\n");
  };
  try {
    const net = await lab.ns("net");
    await lab.exec(net, ["ip", "addr", "add", `${RELAY_IP}/32`, "dev", "lo"]);
    await lab.exec(net, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    for (const i of SITES) {
      const nat = await lab.ns(`nat${i}`);
      const ns = await lab.ns(`home${i}`);
      await lab.link(ns, `10.210.${i}.2/24`, nat, `10.210.${i}.1/24`);
      await lab.link(nat, `${publicIp(i)}/24`, net, `10.211.${i}.254/24`);
      await lab.exec(ns, ["ip", "route", "add", "default", "via", `10.210.${i}.1`]);
      await lab.exec(nat, ["ip", "route", "add", "default", "via", `10.211.${i}.254`]);
      await lab.exec(nat, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
      const lan = await ifaceWith(lab, nat, `10.210.${i}.1`);
      const wan = await ifaceWith(lab, nat, publicIp(i));
      await nft(nat, natRules(lan, wan, symmetric));
      homes[i] = {
        site: i,
        name: `home${i}`,
        ns,
        home: `${dir}/home${i}`,
        fingerprint: "",
        daemon: null,
      };
    }
    // The internet reaches no home directly.
    assert.ok(!(await ping(net, "10.210.1.2", 1)).ok, "net reached a home's private address");

    relay = spawnLogged(
      denCommand(
        ["relay", "--listen", `${RELAY_IP}:${RELAY_PORT}`, "--metrics", "off"],
        { netns: net },
      ),
    );
    await waitFor("relay with its reflector", () => {
      if (relay!.exited()) throw new Error(`relay exited:\n${relay!.log()}`);
      return Promise.resolve(/UDP reflector on ports/.test(relay!.log()));
    }, 20_000);

    const url = `ws://${RELAY_IP}:${RELAY_PORT}`;
    for (const h of Object.values(homes)) {
      h.fingerprint = (await initNode(h.home, h.name, ["--relay", url], {
        listen: `0.0.0.0:${PEER_PORT}`,
        metrics: "off",
      })).fingerprint;
    }
    for (const h of Object.values(homes)) {
      const p = homes[h.site === 1 ? 2 : 1];
      // No address: the peer is reached through the relay only.
      await Deno.writeTextFile(
        `${h.home}/config.toml`,
        `\n[[peers]]\nname = "${p.name}"\nfingerprint = "${p.fingerprint}"\n` +
          `\n[networks.lab]\nprefix = "${PREFIX}"\naddress = "${overlay(h.site)}"\n`,
        { append: true },
      );
    }
    for (const h of Object.values(homes)) {
      const d = h.daemon = spawnLogged(denCommand(["daemon", "--home", h.home], { netns: h.ns }));
      await waitFor(`${h.name}'s daemon`, async () => {
        if (d.exited()) throw new Error(`${h.name}'s daemon exited:\n${d.log()}`);
        return (await den(["status", "--home", h.home])).code === 0;
      });
    }
    const daemonsUp = performance.now();
    await timed(
      "sessions through the relay",
      () =>
        waitFor("both sessions connected through the relay", async () => {
          for (const h of Object.values(homes)) {
            const p = await peerOf(h, homes[h.site === 1 ? 2 : 1].name);
            if (p?.state !== "connected" || p.transport !== "relay") return false;
          }
          return true;
        }, 30_000),
      LABEL,
    );
    try {
      await fn(homes, daemonsUp);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(`${msg}\n=== diagnostics ===\n${await diagnostics()}`, { cause: err });
    }
  } finally {
    for (const h of Object.values(homes)) await h.daemon?.stop().catch(() => {});
    await relay?.stop("SIGTERM").catch(() => {});
    await lab.destroy();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function peerOf(h: Home, name: string): Promise<PeerView | undefined> {
  return (await json<PeerView[]>(h.home, ["peers"]))?.find((p) => p.name === name);
}

async function vpnStatus(h: Home): Promise<VpnStatus> {
  const s = await json<VpnStatus>(h.home, ["vpn", "status"]);
  assert.ok(s, `den vpn status --json on ${h.name} failed`);
  return s;
}

/** How long the cone case took to go direct: the symmetric case waits as long (at least 10 s). */
let coneDirectMs = 10_000;

Deno.test({
  name: "nat e2e: cone NATs → direct UDP between public addresses; symmetric → relay, says why",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const started = performance.now();
    await t.step("cone NATs: hole punched, VPN over UDP between the NATs", async () => {
      await withLab(false, async (h, daemonsUp) => {
        const t0 = performance.now();
        let last: PeerView | undefined;
        await waitFor("home1's path to home2 is udp", async () => {
          last = await peerOf(h[1], "home2");
          return last?.data_path === "udp" && last.nat?.direct === "udp";
        }, 20_000).catch((err) => {
          throw new Error(`${err.message}: last ${JSON.stringify(last)}`);
        });
        coneDirectMs = performance.now() - t0;
        console.log(
          `${LABEL}: direct UDP path ${(coneDirectMs / 1000).toFixed(1)} s after the sessions, ` +
            `${((performance.now() - daemonsUp) / 1000).toFixed(1)} s after both daemons answered`,
        );
        await waitFor("home2's path to home1 is udp", async () => {
          return (await peerOf(h[2], "home1"))?.data_path === "udp";
        }, 10_000);
        for (const i of SITES) {
          const other = i === 1 ? 2 : 1;
          const s = await vpnStatus(h[i]);
          assert.equal(s.dataplane?.nat.type, "cone", JSON.stringify(s.dataplane?.nat));
          assert.equal(s.dataplane?.nat.public, `${publicIp(i)}:${PEER_PORT}`);
          const path = s.dataplane?.peers.find((p) => p.peer === `home${other}`);
          assert.equal(path?.path, "udp", JSON.stringify(s.dataplane));
          // Straight to the other NAT's public address: not the relay, not a private address.
          assert.equal(path?.endpoint, `${publicIp(other)}:${PEER_PORT}`, JSON.stringify(path));
          const p = await peerOf(h[i], `home${other}`);
          assert.deepEqual(
            { local: p?.nat?.local, peer: p?.nat?.peer },
            { local: "cone", peer: "cone" },
          );
        }
        const r = await ping(h[1].ns, overlay(2), 5);
        assert.ok(r.ok, `ping home1 → home2 over the VPN:\n${r.out}`);
        const text = await den(["peers", "--home", h[1].home]);
        assert.match(text.stdout, /home2\s+connected\s+relay\s+udp\s/, text.stdout);
      });
    });

    await t.step(
      "symmetric NATs: no direct path, VPN stays on the relay, and says so",
      async () => {
        await withLab(true, async (h) => {
          let last: PeerView | undefined;
          await waitFor("home1 knowing both NATs are symmetric", async () => {
            last = await peerOf(h[1], "home2");
            return last?.nat?.local === "symmetric" && last.nat.peer === "symmetric";
          }, 20_000).catch((err) => {
            throw new Error(`${err.message}: last ${JSON.stringify(last)}`);
          });
          const wait = Math.max(coneDirectMs, 10_000);
          console.log(`${LABEL}: symmetric NATs known; waiting ${(wait / 1000).toFixed(1)} s`);
          await sleep(wait);
          for (const i of SITES) {
            const p = await peerOf(h[i], `home${i === 1 ? 2 : 1}`);
            assert.equal(p?.data_path, "relay", JSON.stringify(p));
            assert.equal(p?.nat?.direct, "impossible", JSON.stringify(p?.nat));
            assert.match(p?.nat?.why ?? "", /symmetric NAT/);
            const s = await vpnStatus(h[i]);
            assert.equal(s.dataplane?.nat.type, "symmetric", JSON.stringify(s.dataplane?.nat));
            assert.equal(s.dataplane?.nat.mapped.length, 2, JSON.stringify(s.dataplane?.nat));
          }
          const r = await ping(h[1].ns, overlay(2), 5);
          assert.ok(r.ok, `ping home1 → home2 through the relay:\n${r.out}`);
          const text = await den(["peers", "--home", h[1].home]);
          assert.match(text.stdout, /relay \(symmetric NAT\)/, text.stdout);
          assert.match(text.stdout, /symmetric NAT: no direct path/, text.stdout);
          const status = await den(["vpn", "status", "--home", h[1].home]);
          assert.match(status.stdout, /NAT: symmetric/, status.stdout);
          // The UDP datagrams the daemons still send are probes only: nothing went direct.
          const nsPing = await nsRun(h[1].ns, ["ping", "-n", "-c", "1", "-W", "1", RELAY_IP]);
          assert.ok(nsPing.ok, "the home still reaches the relay");
        });
      },
    );
    console.log(`${LABEL}: total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  },
});
