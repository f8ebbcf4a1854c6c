/**
 * The VPN end to end, between network namespaces this test makes: three nodes a, b, c, each on
 * its own subnet behind a router namespace r (which forwards between them and runs a relay).
 * Every node's daemon joins network "office"; the test checks overlay pings between all pairs,
 * a subnet c exports and a's policy allows, a subnet b exports and a's policy refuses (both ends
 * report it), routes dropped when c's daemon dies and back when it returns, the session between
 * a and b moving to the relay when r drops their direct traffic (the VPN still carries pings),
 * and a daemon without CAP_NET_ADMIN saying why its VPN is off while it runs everything else.
 */
import assert from "node:assert/strict";
import { den, denArgv, denCommand, initNode, waitFor } from "../../scripts/lib/den_process.ts";
import { NetnsLab, onPath } from "../../scripts/lib/netns.ts";
import type { PeerView } from "../../src/peer/view.ts";
import type { NetworkStatus, RouteView, VpnStatus } from "../../src/vpn/vpn_service.ts";
import {
  childEnv,
  json,
  type Logged,
  nsRun,
  ping,
  spawnLogged,
  tail,
  timed,
  unavailable,
} from "../support/vpn_e2e.ts";

const OFFICE = "100.80.0.0/16";
const LAB6 = "fd00:80::/64";
const C_SUBNET = "10.99.0.0/24";
const B_SUBNET = "10.55.0.0/24";
const PORT = 7834;
const RELAY_PORT = 8765;
/** The router's address on node i's link is SUBNET(i).1, the node's is SUBNET(i).2. */
const LINKS = { a: "10.61.1", b: "10.61.2", c: "10.61.3" } as const;
type NodeName = keyof typeof LINKS;
const NAMES: NodeName[] = ["a", "b", "c"];

const why = await unavailable();
if (why) console.warn(`SKIPPED vpn e2e: ${why}`);

async function office(home: string): Promise<NetworkStatus | undefined> {
  return (await json<VpnStatus>(home, ["vpn", "status"]))?.networks.find((n) =>
    n.name === "office"
  );
}

interface Node {
  name: NodeName;
  ns: string;
  home: string;
  fingerprint: string;
  /** Its address on its link to the router. */
  addr: string;
  /** Its office address, without the prefix length. */
  overlay: string;
  daemon: Logged | null;
  /** Logs of its earlier daemons (restarts). */
  pastLogs: string;
}

Deno.test({
  name: "vpn e2e: overlay pings, exported subnets and policy, route loss and return, relay, no CAP",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const started = performance.now();
    const lab = new NetnsLab();
    const dir = await Deno.makeTempDir({ prefix: "den-e2e-vpn-" });
    const nodes = {} as Record<NodeName, Node>;
    const stops: (() => Promise<void>)[] = [];
    let nsR = "";
    let relay: Logged | null = null;
    let noCap: Logged | null = null;

    /** Logs, routes, VPN state of every node: appended to every failure. */
    async function diagnostics(): Promise<string> {
      const parts: string[] = [];
      for (const n of Object.values(nodes)) {
        const log = n.pastLogs + (n.daemon?.log() ?? "");
        const routes = await nsRun(n.ns, ["ip", "route"]);
        const status = await den(["vpn", "status", "--json", "--home", n.home]);
        const peers = await den(["peers", "--json", "--home", n.home]);
        parts.push(
          `--- ${n.name}: ip route\n${routes.out.trim()}\n--- ${n.name}: den vpn status --json\n` +
            `${status.stdout.trim() || status.stderr.trim()}\n--- ${n.name}: den peers --json\n` +
            `${peers.stdout.trim() || peers.stderr.trim()}\n--- ${n.name}: daemon log (tail)\n` +
            tail(log),
        );
      }
      if (nsR) parts.push(`--- r: ip route\n${(await nsRun(nsR, ["ip", "route"])).out.trim()}`);
      if (relay) parts.push(`--- relay log (tail)\n${tail(relay.log(), 15)}`);
      if (noCap) parts.push(`--- no-CAP daemon log (tail)\n${tail(noCap.log(), 15)}`);
      return parts.join("\n");
    }

    /** A step whose failure carries the diagnostics; false when it failed. */
    function step(name: string, fn: () => Promise<void>): Promise<boolean> {
      return t.step(name, async () => {
        try {
          await timed(name, fn);
        } catch (err) {
          const msg = err instanceof Error ? err.message : String(err);
          throw new Error(`${msg}\n=== diagnostics ===\n${await diagnostics()}`, { cause: err });
        }
      });
    }

    /** Starts `den daemon` for a node inside its namespace; up once `den status` answers. */
    async function startDaemon(n: Node): Promise<void> {
      if (n.daemon) n.pastLogs += n.daemon.log();
      n.daemon = await startLogged(
        n.home,
        denCommand(["daemon", "--home", n.home], { netns: n.ns }),
      );
    }

    /** A daemon child process, stopped in the end; up once `den status --home HOME` answers. */
    async function startLogged(home: string, cmd: Deno.Command): Promise<Logged> {
      const d = spawnLogged(cmd);
      stops.push(() => d.stop());
      await waitFor(`daemon in ${home}`, async () => {
        if (d.exited()) throw new Error(`daemon in ${home} exited:\n${d.log()}`);
        return (await den(["status", "--home", home])).code === 0;
      }).catch((err) => {
        throw new Error(`${err.message}\n--- its log\n${tail(d.log())}`);
      });
      return d;
    }

    async function routesOf(n: Node): Promise<RouteView[]> {
      const r = await json<RouteView[]>(n.home, ["routes"]);
      assert.ok(r, `den routes --json on ${n.name} failed`);
      return r;
    }

    async function peerOf(n: Node, name: string): Promise<PeerView | undefined> {
      return (await json<PeerView[]>(n.home, ["peers"]))?.find((p) => p.name === name);
    }

    /** Retries `ping` until it answers (routes converge); the last output on failure. */
    async function pingUntil(from: Node, addr: string, timeoutMs: number): Promise<void> {
      let last = "";
      const t0 = performance.now();
      await waitFor(`${from.name} → ${addr} ping`, async () => {
        const r = await ping(from.ns, addr);
        last = r.out;
        return r.ok;
      }, timeoutMs).catch((err) => {
        throw new Error(`${err.message}; last ping:\n${last}`);
      });
      const s = (performance.now() - t0) / 1000;
      if (s > 2) console.log(`vpn e2e: ${from.name} → ${addr} answered after ${s.toFixed(1)} s`);
    }

    async function pingFails(from: Node, addr: string): Promise<void> {
      const r = await ping(from.ns, addr, 2);
      assert.ok(!r.ok, `${from.name} → ${addr} should not answer:\n${r.out}`);
    }

    try {
      if (
        !await step("namespaces, router, relay", async () => {
          nsR = await lab.ns("r");
          await lab.exec(nsR, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
          for (const name of NAMES) {
            const ns = await lab.ns(name);
            const net = LINKS[name];
            await lab.link(nsR, `${net}.1/24`, ns, `${net}.2/24`);
            await lab.exec(ns, ["ip", "route", "add", "default", "via", `${net}.1`]);
            nodes[name] = {
              name,
              ns,
              home: `${dir}/${name}`,
              fingerprint: "",
              addr: `${net}.2`,
              overlay: "",
              daemon: null,
              pastLogs: "",
            };
          }
          // Subnets behind c (exported, allowed by a) and b (exported, refused by a).
          for (const [n, cidr] of [[nodes.c, "10.99.0.1/24"], [nodes.b, "10.55.0.1/24"]] as const) {
            // A dummy interface; where the kernel has no dummy driver, a veth pair kept inside.
            const dummy = await nsRun(n.ns, ["ip", "link", "add", "dum0", "type", "dummy"]);
            if (!dummy.ok) {
              console.log(`vpn e2e: no dummy interfaces (${dummy.out.trim()}): a veth pair`);
              await lab.exec(n.ns, [
                "ip",
                "link",
                "add",
                "dum0",
                "type",
                "veth",
                "peer",
                "name",
                "dum0p",
              ]);
              await lab.exec(n.ns, ["ip", "link", "set", "dum0p", "up"]);
            }
            await lab.exec(n.ns, ["ip", "addr", "add", cidr, "dev", "dum0"]);
            await lab.exec(n.ns, ["ip", "link", "set", "dum0", "up"]);
          }
          // The namespaces reach each other through r.
          const direct = await ping(nodes.a.ns, nodes.c.addr, 1);
          assert.ok(direct.ok, `a cannot reach c through r:\n${direct.out}`);

          relay = spawnLogged(
            denCommand(
              ["relay", "--listen", `0.0.0.0:${RELAY_PORT}`, "--metrics", "off"],
              { netns: nsR },
            ),
          );
          const r = relay;
          stops.push(() => r.stop("SIGTERM"));
          await waitFor("relay", async () => {
            if (r.exited()) throw new Error(`relay exited:\n${r.log()}`);
            const probe = `exec 3<>/dev/tcp/${LINKS.a}.1/${RELAY_PORT}`;
            return (await nsRun(nodes.a.ns, ["bash", "-c", probe])).ok;
          });
        })
      ) return;

      if (
        !await step("init nodes, write configs, start daemons", async () => {
          for (const n of Object.values(nodes)) {
            const relayUrl = `ws://${LINKS[n.name]}.1:${RELAY_PORT}`;
            n.fingerprint = (await initNode(n.home, n.name, ["--relay", relayUrl], {
              listen: `0.0.0.0:${PORT}`,
              metrics: "off",
            })).fingerprint;
          }
          for (const n of Object.values(nodes)) {
            let extra = "";
            for (const p of Object.values(nodes)) {
              if (p === n) continue;
              extra += `\n[[peers]]\nname = "${p.name}"\naddress = "${p.addr}:${PORT}"\n` +
                `fingerprint = "${p.fingerprint}"\n`;
            }
            // A second network, IPv6: several networks at once, and the IPv6 packet path.
            extra += `\n[networks.lab6]\nprefix = "${LAB6}"\naddress = "auto"\n`;
            extra += `\n[networks.office]\nprefix = "${OFFICE}"\naddress = "auto"\n`;
            if (n.name === "c") extra += `routes = ["${C_SUBNET}"]\n`;
            if (n.name === "b") extra += `routes = ["${B_SUBNET}"]\n`;
            // a allows c's subnet; it has no rule for b, so b may announce only its address.
            if (n.name === "a") {
              extra += `\n[[networks.office.allow]]\npeer = "c"\nprefixes = ["${C_SUBNET}"]\n`;
            }
            await Deno.writeTextFile(`${n.home}/config.toml`, extra, { append: true });
          }
          await timed("daemons started", async () => {
            for (const n of Object.values(nodes)) await startDaemon(n);
          });
          await timed(
            "office addresses and sessions",
            () =>
              waitFor("office addresses and all sessions", async () => {
                for (const n of Object.values(nodes)) {
                  const net = await office(n.home);
                  if (!net?.address.endsWith("/16")) return false;
                  n.overlay = net.address.split("/")[0];
                  const peers = await json<PeerView[]>(n.home, ["peers"]);
                  const others = NAMES.filter((x) => x !== n.name);
                  const up = others.every((x) =>
                    peers?.some((p) => p.name === x && p.state === "connected")
                  );
                  if (!up) return false;
                }
                return true;
              }, 30_000),
          );
          for (const n of Object.values(nodes)) {
            assert.match(n.overlay, /^100\.80\.\d+\.\d+$/);
            const link = await nsRun(n.ns, ["ip", "-4", "addr", "show", "dev", "den-office"]);
            assert.ok(link.out.includes(`inet ${n.overlay}/16`), `${n.name}: ${link.out}`);
          }
          const overlays = new Set(Object.values(nodes).map((n) => n.overlay));
          assert.equal(overlays.size, 3, "three distinct office addresses");
        })
      ) return;

      if (
        !await step("every node pings every other's office address", async () => {
          await timed(
            "routes converged (first ping a → b)",
            () => pingUntil(nodes.a, nodes.b.overlay, 30_000),
          );
          for (const from of Object.values(nodes)) {
            for (const to of Object.values(nodes)) {
              if (from !== to) await pingUntil(from, to.overlay, 30_000);
            }
          }
          const a = await office(nodes.a.home);
          assert.ok(a && a.packets_out > 0 && a.packets_in > 0, JSON.stringify(a));
          assert.equal(a.peers, 2);
        })
      ) return;

      if (
        !await step("a second network, IPv6, runs beside it: a and b ping over it", async () => {
          const lab6 = async (n: Node) =>
            (await json<{ networks: { name: string; address: string }[] }>(n.home, [
              "vpn",
              "status",
            ]))?.networks.find((x) => x.name === "lab6")?.address.split("/")[0];
          const b6 = await lab6(nodes.b);
          assert.ok(b6 && b6.startsWith("fd00:80::"), `b's lab6 address: ${b6}`);
          await pingUntil(nodes.a, b6, 30_000);
        })
      ) return;

      if (
        !await step("c's exported subnet is routed to a (allowed)", async () => {
          await waitFor(
            "a's route to c's subnet",
            async () =>
              (await routesOf(nodes.a)).some((r) =>
                r.prefix === C_SUBNET && r.peer === "c" && r.network === "office"
              ),
            15_000,
          );
          const routes = await routesOf(nodes.a);
          assert.ok(
            routes.some((r) => r.prefix === `${nodes.c.overlay}/32` && r.peer === "c"),
            JSON.stringify(routes),
          );
          const kernel = await nsRun(nodes.a.ns, ["ip", "route", "show", C_SUBNET]);
          assert.match(kernel.out, /dev den-office/);
          await pingUntil(nodes.a, "10.99.0.1", 15_000);
        })
      ) return;

      if (
        !await step("b's exported subnet is refused by a, and both ends say so", async () => {
          await waitFor("the refusal on both ends", async () => {
            const a = await office(nodes.a.home), b = await office(nodes.b.home);
            return Boolean(
              a?.rejected.some((r) => r.peer === "b" && r.prefix === B_SUBNET) &&
                b?.refused_by_peers.some((r) => r.peer === "a" && r.prefix === B_SUBNET),
            );
          }, 15_000);
          const a = (await office(nodes.a.home))!;
          const rej = a.rejected.find((r) => r.peer === "b" && r.prefix === B_SUBNET)!;
          assert.match(rej.reason, /not allowed/);
          assert.ok(
            !a.rejected.some((r) => r.peer === "c"),
            `a refused nothing of c's: ${JSON.stringify(a.rejected)}`,
          );
          assert.match(
            nodes.a.daemon!.log(),
            /route announcement rejected.*peer=b.*prefix=10\.55\.0\.0\/24/,
          );
          assert.match(nodes.b.daemon!.log(), /a peer refused our route.*peer=a.*10\.55\.0\.0\/24/);
          const routes = await routesOf(nodes.a);
          assert.ok(!routes.some((r) => r.prefix === B_SUBNET), JSON.stringify(routes));
          // b's own address is still accepted from it.
          assert.ok(routes.some((r) => r.prefix === `${nodes.b.overlay}/32` && r.peer === "b"));
          const kernel = await nsRun(nodes.a.ns, ["ip", "route", "show", B_SUBNET]);
          assert.equal(kernel.out.trim(), "", "no kernel route for the refused subnet");
          await pingFails(nodes.a, "10.55.0.1");
        })
      ) return;

      if (
        !await step(
          "c's daemon killed: a drops its routes; restarted: they come back",
          async () => {
            const c = nodes.c;
            const viaC = (r: RouteView) =>
              r.peer === "c" || r.peer === c.fingerprint || r.prefix === C_SUBNET ||
              r.prefix === `${c.overlay}/32`;
            await c.daemon!.stop("SIGKILL");
            await timed("a dropped c's routes", () =>
              waitFor("a dropping c's routes", async () => {
                return !(await routesOf(nodes.a)).some(viaC);
              }, 35_000));
            const kernel = await nsRun(nodes.a.ns, ["ip", "route", "show", C_SUBNET]);
            assert.equal(kernel.out.trim(), "", "the kernel route to c's subnet is gone");
            await pingFails(nodes.a, "10.99.0.1");
            await pingFails(nodes.a, c.overlay);

            await timed("c restarted and its routes back on a", async () => {
              await startDaemon(c);
              await waitFor("c's routes back on a", async () => {
                const routes = await routesOf(nodes.a);
                return routes.some((r) => r.prefix === C_SUBNET && r.peer === "c") &&
                  routes.some((r) => r.prefix === `${c.overlay}/32` && r.peer === "c");
              }, 30_000);
            });
            assert.equal((await office(c.home))?.address, `${c.overlay}/16`, "same address");
            await pingUntil(nodes.a, "10.99.0.1", 15_000);
            await pingUntil(nodes.a, c.overlay, 15_000);
            await pingUntil(c, nodes.b.overlay, 15_000);
          },
        )
      ) return;

      if (
        !await step("direct a↔b traffic dropped by r: the session moves to the relay", async () => {
          const a = nodes.a, b = nodes.b;
          const before = await peerOf(a, "b");
          assert.equal(before?.transport, "tcp", JSON.stringify(before));
          // iptables in r where it works, else an ip rule: both drop silently, as a firewall.
          const pairs = [[a.addr, b.addr], [b.addr, a.addr]];
          const undo: string[][] = [];
          const block = async () => {
            for (const [src, dst] of pairs) {
              const rule = ["FORWARD", "-s", src, "-d", dst, "-j", "DROP"];
              if (onPath("iptables") && (await nsRun(nsR, ["iptables", "-I", ...rule])).ok) {
                undo.push(["iptables", "-D", ...rule]);
                continue;
              }
              const ipRule = ["from", src, "to", dst, "blackhole"];
              await lab.exec(nsR, ["ip", "rule", "add", ...ipRule]);
              undo.push(["ip", "rule", "del", ...ipRule]);
            }
            console.log(`vpn e2e: a↔b blocked in r with ${undo.map((u) => u[0]).join(", ")}`);
          };
          try {
            await block();
            const direct = await nsRun(a.ns, ["ping", "-n", "-c", "1", "-W", "1", b.addr]);
            assert.ok(!direct.ok, `a still reaches b directly:\n${direct.out}`);
            await timed(
              "session a↔b back through the relay",
              () =>
                waitFor("a's session with b through the relay", async () => {
                  const p = await peerOf(a, "b");
                  return p?.state === "connected" && p.transport === "relay";
                }, 75_000),
            );
            const p = (await peerOf(a, "b"))!;
            assert.match(p.path ?? "", new RegExp(`^ws://${LINKS.a.replaceAll(".", "\\.")}\\.1:`));
            await timed(
              "overlay ping a → b through the relay",
              () => pingUntil(a, b.overlay, 20_000),
            );
            await pingUntil(b, a.overlay, 15_000);
            // c still reaches both directly.
            assert.equal((await peerOf(a, "c"))?.transport, "tcp");
          } finally {
            for (const argv of undo) await lab.exec(nsR, argv, { check: false });
          }
        })
      ) return;

      await step("a daemon without CAP_NET_ADMIN says why its VPN is off", async () => {
        const wrapper = onPath("setpriv")
          ? [
            "setpriv",
            "--inh-caps=-net_admin",
            "--ambient-caps=-net_admin",
            "--bounding-set=-net_admin",
          ]
          : onPath("capsh")
          ? null
          : undefined;
        if (wrapper === undefined) {
          console.warn("SKIPPED no-CAP_NET_ADMIN check: neither setpriv nor capsh is installed");
          return;
        }
        const nsD = await lab.ns("d");
        const home = `${dir}/d`;
        await initNode(home, "d", [], { listen: `127.0.0.1:${PORT}`, metrics: "off" });
        await Deno.writeTextFile(
          `${home}/config.toml`,
          `\n[networks.office]\nprefix = "${OFFICE}"\n`,
          { append: true },
        );
        const daemon = denArgv(["daemon", "--home", home]);
        const argv = wrapper ? ["ip", "netns", "exec", nsD, ...wrapper, ...daemon] : [
          "ip",
          "netns",
          "exec",
          nsD,
          "capsh",
          "--drop=cap_net_admin",
          "--",
          "-c",
          "exec " + daemon.map((w) => `'${w}'`).join(" "),
        ];
        const d = noCap = await startLogged(
          home,
          new Deno.Command(argv[0], {
            args: argv.slice(1),
            env: childEnv(),
            clearEnv: true,
            stdin: "null",
            stdout: "piped",
            stderr: "piped",
          }),
        );
        // The daemon really runs without the capability (its effective set lacks bit 12).
        const procStatus = await Deno.readTextFile(`/proc/${d.child.pid}/status`);
        const eff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(procStatus)![1]}`);
        assert.equal((eff >> 12n) & 1n, 0n, `CAP_NET_ADMIN still effective: ${procStatus}`);

        const s = await json<VpnStatus>(home, ["vpn", "status"]);
        assert.ok(s, "den vpn status --json answers");
        assert.equal(s.enabled, false, JSON.stringify(s));
        assert.match(s.reason ?? "", /CAP_NET_ADMIN|root/, JSON.stringify(s));
        assert.equal(s.networks.length, 0);
        const text = await den(["vpn", "status", "--home", home]);
        assert.equal(text.code, 0, text.stderr);
        assert.match(text.stdout, /VPN off: .*(CAP_NET_ADMIN|root)/);
        const status = await den(["status", "--json", "--home", home]);
        assert.equal(status.code, 0, status.stderr);
        assert.ok(JSON.parse(status.stdout).fingerprint, status.stdout);
        const links = await nsRun(nsD, ["ip", "link", "show"]);
        assert.ok(!links.out.includes("den-office"), links.out);
      });
    } finally {
      for (const stop of stops.reverse()) await stop().catch(() => {});
      await lab.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      console.log(`vpn e2e: total ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
  },
});
