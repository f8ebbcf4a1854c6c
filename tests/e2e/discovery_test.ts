/**
 * LAN discovery (mDNS) between daemons in network namespaces on one bridged link, made by the
 * test and removed afterwards: a peer pinned by fingerprint only is found and connected;
 * teammates whose team-chain addresses went stale find each other again while a stranger on the
 * same link, whose announcements both receive, is never connected; `[discovery] mdns = false`
 * keeps a node out of it.
 */
import assert from "node:assert/strict";
import { DaemonProcess, den, initNode, waitFor } from "../../scripts/lib/den_process.ts";
import { NetnsLab, netnsUnavailable, run } from "../../scripts/lib/netns.ts";
import type { PeerView } from "../../src/peer/view.ts";

const why = netnsUnavailable();
if (why) console.warn(`SKIPPED LAN discovery e2e: ${why}`);

const DEBUG = { args: ["--log-level", "debug"] };

/**
 * Namespaces on one Ethernet segment: a bridge in namespace "l", one veth per host into it,
 * each host with its addresses and the 224.0.0.0/4 route. Returns the hosts' namespace names.
 */
async function lan(lab: NetnsLab, hosts: { suffix: string; addrs: string[] }[]) {
  const br = await lab.ns("l");
  await lab.exec(br, ["ip", "link", "add", "br0", "type", "bridge"]);
  await lab.exec(br, ["ip", "link", "set", "br0", "up"]);
  const out: string[] = [];
  for (const h of hosts) {
    const ns = await lab.ns(h.suffix);
    const id = crypto.randomUUID().slice(0, 6);
    const inner = `vn${id}`, outer = `vl${id}`;
    await run([
      "ip",
      "link",
      "add",
      inner,
      "netns",
      ns,
      "type",
      "veth",
      "peer",
      "name",
      outer,
      "netns",
      br,
    ]);
    await lab.exec(br, ["ip", "link", "set", outer, "master", "br0"]);
    await lab.exec(br, ["ip", "link", "set", outer, "up"]);
    for (const a of h.addrs) await lab.exec(ns, ["ip", "addr", "add", a, "dev", inner]);
    await lab.exec(ns, ["ip", "link", "set", inner, "up"]);
    await lab.exec(ns, ["ip", "route", "add", "224.0.0.0/4", "dev", inner]);
    out.push(ns);
  }
  return out;
}

async function peers(home: string): Promise<PeerView[]> {
  const r = await den(["peers", "--json", "--home", home]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function connected(home: string, name: string): Promise<PeerView | null> {
  const p = (await peers(home)).find((p) => p.name === name);
  return p?.state === "connected" ? p : null;
}

async function cli(home: string, args: string[]): Promise<string> {
  const r = await den([...args, "--home", home]);
  assert.equal(r.code, 0, `den ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** A test body with a namespace lab, a temp dir and daemons, all removed in the end. */
function labTest(name: string, fn: (ctx: Ctx) => Promise<void>) {
  Deno.test({
    name,
    ignore: why !== null,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const lab = new NetnsLab();
      const dir = await Deno.makeTempDir({ prefix: "den-e2e-mdns-" });
      const daemons: DaemonProcess[] = [];
      const ctx: Ctx = {
        lab,
        dir,
        async start(home, ns, opts = DEBUG) {
          const d = await DaemonProcess.start(home, { netns: ns, ...opts });
          daemons.push(d);
          return d;
        },
      };
      try {
        await fn(ctx);
      } catch (err) {
        for (const d of daemons) console.error(`--- log of ${d.home}\n${d.log.slice(-4000)}`);
        throw err;
      } finally {
        await Promise.allSettled(daemons.map((d) => d.stop()));
        await lab.destroy();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

interface Ctx {
  lab: NetnsLab;
  dir: string;
  start(home: string, ns: string, opts?: { args?: string[] }): Promise<DaemonProcess>;
}

labTest("mdns e2e: peers pinned by fingerprint only, no address, find each other", async (c) => {
  const [nsA, nsB] = await lan(c.lab, [
    { suffix: "a", addrs: ["10.236.1.1/24"] },
    { suffix: "b", addrs: ["10.236.1.2/24"] },
  ]);
  const hA = `${c.dir}/a`, hB = `${c.dir}/b`;
  const a = await initNode(hA, "alpha", [], { listen: "10.236.1.1:7834", metrics: "off" });
  const b = await initNode(hB, "bravo", [], { listen: "10.236.1.2:7834", metrics: "off" });
  await cli(hA, ["add-peer", "bravo", "--fingerprint", b.fingerprint]);
  await cli(hB, ["add-peer", "alpha", "--fingerprint", a.fingerprint]);
  const dA = await c.start(hA, nsA);
  await c.start(hB, nsB);
  let seen: PeerView | null = null;
  await waitFor("alpha connected to bravo through mDNS", async () => {
    seen = await connected(hA, "bravo");
    return seen !== null && (await connected(hB, "alpha")) !== null;
  }, 20_000);
  const p = seen as unknown as PeerView;
  assert.equal(p.fingerprint, b.fingerprint);
  assert.equal(p.address, "10.236.1.2:7834", "den peers shows the address found on the LAN");
  assert.equal((await connected(hB, "alpha"))?.address, "10.236.1.1:7834");
  assert.match(dA.log, /peer found on the LAN peer=bravo address=10\.236\.1\.2:7834/);
});

labTest(
  "mdns e2e: teammates with stale chain addresses reconnect over mDNS; a stranger never does",
  async (c) => {
    const [nsA, nsB, nsC] = await lan(c.lab, [
      { suffix: "a", addrs: ["10.236.2.1/24", "10.236.2.11/24"] },
      { suffix: "b", addrs: ["10.236.2.2/24", "10.236.2.12/24"] },
      { suffix: "c", addrs: ["10.236.2.3/24"] },
    ]);
    const hA = `${c.dir}/a`, hB = `${c.dir}/b`, hC = `${c.dir}/c`;
    const a = await initNode(hA, "alpha", [], { listen: "10.236.2.1:7834", metrics: "off" });
    const b = await initNode(hB, "bravo", [], { listen: "10.236.2.2:7834", metrics: "off" });
    const s = await initNode(hC, "stranger", [], { listen: "10.236.2.3:7834", metrics: "off" });

    // The team is formed over .1 and .2: those are the addresses its chain records.
    let dA = await c.start(hA, nsA);
    let dB = await c.start(hB, nsB);
    await cli(hA, ["team", "create", "crew"]);
    const code = JSON.parse(await cli(hA, ["invite", "--team", "crew", "--json"])).code;
    assert.ok(code, "a single admin's invite is approved at once");
    await cli(hB, ["join", code]);
    await waitFor("both see two members", async () => {
      for (const h of [hA, hB]) {
        if (JSON.parse(await cli(h, ["team", "members", "crew", "--json"])).length !== 2) {
          return false;
        }
      }
      return true;
    });
    for (const d of [dA, dB]) {
      await den(["goodbye", "--home", d.home]);
      await d.finished();
    }

    // Both move to other addresses of the link: the chain's .1/.2 answer nothing any more.
    for (
      const [h, from, to] of [[hA, "10.236.2.1", "10.236.2.11"], [hB, "10.236.2.2", "10.236.2.12"]]
    ) {
      const cfg = await Deno.readTextFile(`${h}/config.toml`);
      assert.ok(cfg.includes(`"${from}:7834"`));
      await Deno.writeTextFile(`${h}/config.toml`, cfg.replace(`"${from}:7834"`, `"${to}:7834"`));
    }
    dA = await c.start(hA, nsA);
    dB = await c.start(hB, nsB);
    const dC = await c.start(hC, nsC);

    await waitFor(
      "the teammates connected through mDNS",
      async () =>
        (await connected(hA, "bravo")) !== null && (await connected(hB, "alpha")) !== null,
      20_000,
    );
    const ab = (await connected(hA, "bravo"))!;
    assert.equal(ab.fingerprint, b.fingerprint);
    assert.equal(ab.address, "10.236.2.12:7834", "the LAN address, not the chain's stale one");
    assert.equal((await connected(hB, "alpha"))?.address, "10.236.2.11:7834");
    assert.match(dA.log + dB.log, /peer found on the LAN/);

    // The stranger's announcements reach both; neither dials it, and it dials neither.
    const ignored = (fp: string) =>
      new RegExp(`not a peer of this node; ignored fingerprint=${fp}`);
    await waitFor(
      "the stranger's announcements seen by both",
      () =>
        Promise.resolve(ignored(s.fingerprint).test(dA.log) && ignored(s.fingerprint).test(dB.log)),
    );
    await waitFor(
      "the stranger sees both",
      () =>
        Promise.resolve(ignored(a.fingerprint).test(dC.log) && ignored(b.fingerprint).test(dC.log)),
    );
    await new Promise((r) => setTimeout(r, 1500)); // room for a wrong dial to show up
    for (const h of [hA, hB]) {
      const list = await peers(h);
      assert.deepEqual(list.map((p) => p.name), [h === hA ? "bravo" : "alpha"]);
      assert.ok(!list.some((p) => p.fingerprint === s.fingerprint));
    }
    assert.deepEqual(await peers(hC), [], "the stranger has no peers at all");
    assert.doesNotMatch(dA.log + dB.log, /inbound handshake failed/);
  },
);

labTest("mdns e2e: [discovery] mdns = false keeps a node out of LAN discovery", async (c) => {
  const [nsA, nsB] = await lan(c.lab, [
    { suffix: "a", addrs: ["10.236.3.1/24"] },
    { suffix: "b", addrs: ["10.236.3.2/24"] },
  ]);
  const hA = `${c.dir}/a`, hB = `${c.dir}/b`;
  const a = await initNode(hA, "alpha", [], { listen: "10.236.3.1:7834", metrics: "off" });
  const b = await initNode(hB, "bravo", [], { listen: "10.236.3.2:7834", metrics: "off" });
  await cli(hA, ["add-peer", "bravo", "--fingerprint", b.fingerprint]);
  await cli(hB, ["add-peer", "alpha", "--fingerprint", a.fingerprint]);
  await Deno.writeTextFile(`${hB}/config.toml`, "\n[discovery]\nmdns = false\n", { append: true });
  const dA = await c.start(hA, nsA);
  const dB = await c.start(hB, nsB);
  assert.match(dB.log, /mDNS off: \[discovery\] mdns = false/);
  assert.match(dA.log, /mDNS discovery on/);
  // Alpha queries at 0, 1 and 3 s (pinned peers connect within ~2 s); bravo stays silent.
  await new Promise((r) => setTimeout(r, 5000));
  for (const [h, name] of [[hA, "bravo"], [hB, "alpha"]]) {
    const p = (await peers(h)).find((p) => p.name === name);
    assert.ok(p && p.state !== "connected", `${name}: ${JSON.stringify(p)}`);
    assert.equal(p.address, null);
  }
  assert.doesNotMatch(dA.log, /peer found on the LAN/);
});
