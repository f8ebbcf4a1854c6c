/**
 * Exercises a TunDevice inside the network namespace it runs in (tests/integration/
 * tun_device_test.ts starts it with `ip netns exec NS deno run --unstable-net -A …`, since a TUN
 * device appears in the namespace of the process that opens it). Needs root, `ip` and `ping`.
 *
 *   tun_probe.ts --cache DIR [--name dentest0] [--mtu 1400]
 *
 * Prints one JSON object (ProbeResult) on stdout; problems in a step are reported in it rather
 * than thrown where the test can say more with them.
 */
import { parseArgs } from "node:util";
import { loadTunShim } from "../../src/vpn/tun/shim_path.ts";
import { TunDevice } from "../../src/vpn/tun/tun_device.ts";
import { raceTimeout, TIMED_OUT } from "../../src/util/timeout.ts";
import { onPath, runOutput } from "../../scripts/lib/netns.ts";

const LOCAL = "10.77.0.1";
const PEER = "10.77.0.2";
const OTHER = "10.77.0.3";

export interface ProbeResult {
  name: string;
  mtu: number;
  slot: number;
  linkMtu: number;
  /** Second open of the same name while the first is open: the error text. */
  busyError: string;
  /** open(shim, "", …): the name the kernel chose. */
  autoName: string;
  /** (a) datagrams read from the device, (b) echo replies written to it and delivered. */
  udp: {
    read: number;
    payloadsRead: string[];
    checksumsValid: boolean;
    written: number;
    echoed: string[];
    from: string;
    tag: string;
  };
  /** The same with ping's ICMP echo requests; null when ping is not installed. */
  ping: { requests: number; repliesWritten: number; pingExit: number; pingSummary: string } | null;
  batch: { sent: number; firstBatch: number; total: number; allUdpToPeer: boolean };
  idle: { packets: number; elapsedMs: number; timeoutMs: number };
  bench: { packets: number; returned: number; seconds: number; pktsPerSec: number } | null;
  benchError?: string;
  close: {
    pendingReadResult: number;
    closeMs: number;
    readAfterClose: number;
    writeAfterClose: number;
    linkGone: boolean;
  };
}

async function sh(argv: string[], check = true): Promise<{ ok: boolean; out: string }> {
  const r = await runOutput(argv);
  if (check && !r.ok) throw new Error(`${argv.join(" ")} failed: ${r.stderr.trim()}`);
  return r;
}

function ip4(text: string): Uint8Array {
  return new Uint8Array(text.split(".").map(Number));
}

function ip4Text(b: Uint8Array): string {
  return Array.from(b).join(".");
}

/** Internet checksum (RFC 1071) over `data`, starting from a partial sum. */
function checksum(data: Uint8Array, start = 0): number {
  let sum = start;
  for (let i = 0; i + 1 < data.length; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (data.length % 2) sum += data[data.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ipv4Header(pkt: Uint8Array, proto: number, src: string, dst: string, ttl = 64): void {
  const v = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength);
  pkt[0] = 0x45;
  pkt[1] = 0;
  v.setUint16(2, pkt.length);
  v.setUint16(4, Math.floor(Math.random() * 0xffff));
  v.setUint16(6, 0x4000); // DF
  pkt[8] = ttl;
  pkt[9] = proto;
  v.setUint16(10, 0);
  pkt.set(ip4(src), 12);
  pkt.set(ip4(dst), 16);
  v.setUint16(10, checksum(pkt.subarray(0, 20)));
}

/** An IPv4/UDP packet with correct IP and UDP checksums. */
function udp4(src: string, sport: number, dst: string, dport: number, payload: Uint8Array) {
  const pkt = new Uint8Array(28 + payload.length);
  ipv4Header(pkt, 17, src, dst);
  const v = new DataView(pkt.buffer);
  v.setUint16(20, sport);
  v.setUint16(22, dport);
  v.setUint16(24, 8 + payload.length);
  pkt.set(payload, 28);
  // Pseudo-header: src, dst, zero, protocol, UDP length.
  const pseudo = new Uint8Array(12);
  pseudo.set(pkt.subarray(12, 20));
  pseudo[9] = 17;
  new DataView(pseudo.buffer).setUint16(10, 8 + payload.length);
  const partial = 0xffff & ~checksum(pseudo);
  const sum = checksum(pkt.subarray(20), partial);
  v.setUint16(26, sum === 0 ? 0xffff : sum);
  return pkt;
}

function isIpv4(p: Uint8Array, proto: number, src: string, dst: string): boolean {
  return p.length >= 20 && p[0] >> 4 === 4 && p[9] === proto &&
    ip4Text(p.subarray(12, 16)) === src && ip4Text(p.subarray(16, 20)) === dst;
}

function udpDstPort(p: Uint8Array): number {
  const ihl = (p[0] & 0x0f) * 4;
  return (p[ihl + 2] << 8) | p[ihl + 3];
}

function udpPayload(p: Uint8Array): Uint8Array {
  const ihl = (p[0] & 0x0f) * 4;
  const len = (p[ihl + 4] << 8) | p[ihl + 5];
  return p.slice(ihl + 8, ihl + len);
}

/** The UDP checksum of an IPv4 packet verifies (or is 0, i.e. absent). */
function udpChecksumValid(p: Uint8Array): boolean {
  const ihl = (p[0] & 0x0f) * 4;
  const udp = p.subarray(ihl, ihl + ((p[ihl + 4] << 8) | p[ihl + 5]));
  if (udp[6] === 0 && udp[7] === 0) return true;
  const pseudo = new Uint8Array(12);
  pseudo.set(p.subarray(12, 20));
  pseudo[9] = 17;
  new DataView(pseudo.buffer).setUint16(10, udp.length);
  return checksum(udp, 0xffff & ~checksum(pseudo)) === 0;
}

/** The echo reply to an IPv4 ICMP echo request. */
function echoReply(req: Uint8Array): Uint8Array {
  const ihl = (req[0] & 0x0f) * 4;
  const rep = req.slice();
  rep.set(req.subarray(16, 20), 12);
  rep.set(req.subarray(12, 16), 16);
  rep[8] = 64;
  rep[10] = rep[11] = 0;
  new DataView(rep.buffer).setUint16(10, checksum(rep.subarray(0, ihl)));
  rep[ihl] = 0; // echo reply
  rep[ihl + 2] = rep[ihl + 3] = 0;
  new DataView(rep.buffer).setUint16(ihl + 2, checksum(rep.subarray(ihl)));
  return rep;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function drain(dev: TunDevice): Promise<number> {
  let n = 0;
  for (let i = 0; i < 100; i++) {
    const got = await dev.readBatch(50);
    if (got.length === 0) break;
    n += got.length;
  }
  return n;
}

async function main(): Promise<ProbeResult> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      cache: { type: "string" },
      name: { type: "string", default: "dentest0" },
      mtu: { type: "string", default: "1400" },
    },
  });
  if (!values.cache) throw new Error("--cache DIR is required");
  const name = values.name, mtu = Number(values.mtu);
  const shim = await loadTunShim({ cacheDir: values.cache });
  const dev = await TunDevice.open(shim, name, mtu);

  let busyError = "";
  try {
    const again = await TunDevice.open(shim, name, mtu);
    await again.close();
  } catch (err) {
    busyError = (err as Error).message;
  }
  const auto = await TunDevice.open(shim, "", mtu);
  const autoName = auto.name;
  await auto.close();

  // No IPv6 on the device: router solicitations and MLD reports would only add noise.
  await Deno.writeTextFile(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, "1").catch(() => {});
  await sh(["ip", "addr", "add", `${LOCAL}/24`, "dev", name]);
  await sh(["ip", "link", "set", name, "up"]);
  const linkMtu = Number(
    / mtu (\d+)/.exec((await sh(["ip", "-o", "link", "show", name])).out)?.[1],
  );
  await drain(dev);

  // (a) Datagrams sent to 10.77.0.2 come out of the device as IPv4/UDP packets; (b) echo
  // replies written to the device (one batch, with a packet the kernel rejects in the middle)
  // reach the sending socket.
  const sock = Deno.listenDatagram({ transport: "udp", hostname: LOCAL, port: 0 });
  const port = (sock.addr as Deno.NetAddr).port;
  const tag = crypto.randomUUID().slice(0, 8);
  const enc = new TextEncoder(), dec = new TextDecoder();
  for (let i = 0; i < 3; i++) {
    await sock.send(enc.encode(`echo-${tag}-${i}`), { transport: "udp", hostname: PEER, port: 7 });
  }
  const seen: Uint8Array[] = [];
  const readDeadline = Date.now() + 5000;
  while (seen.length < 3 && Date.now() < readDeadline) {
    for (const p of await dev.readBatch(200)) {
      if (isIpv4(p, 17, LOCAL, PEER) && udpDstPort(p) === 7) seen.push(p);
    }
  }
  const replies = seen.map((p) => udp4(PEER, 7, LOCAL, port, udpPayload(p)));
  const garbage = new Uint8Array(40).fill(0x01); // version nibble 0: EINVAL from the kernel
  const written = dev.writeBatch([replies[0], garbage, ...replies.slice(1)].filter((p) => p));
  const echoed: string[] = [];
  let from = "";
  while (echoed.length < replies.length) {
    const got = await raceTimeout(sock.receive(), 3000);
    if (got === TIMED_OUT) break;
    echoed.push(dec.decode(got[0]));
    from = `${(got[1] as Deno.NetAddr).hostname}:${(got[1] as Deno.NetAddr).port}`;
  }
  sock.close();
  const udp = {
    read: seen.length,
    payloadsRead: seen.map((p) => dec.decode(udpPayload(p))),
    checksumsValid: seen.every(udpChecksumValid),
    written,
    echoed,
    from,
    tag,
  };
  await drain(dev);

  // (a') ping, when installed: its echo requests are read, our echo replies make it succeed.
  let ping: ProbeResult["ping"] = null;
  if (onPath("ping")) {
    const pingChild = new Deno.Command("ping", {
      args: ["-n", "-c", "3", "-i", "0.2", "-W", "3", PEER],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let requests = 0, repliesWritten = 0;
    const pingDeadline = Date.now() + 6000;
    while (requests < 3 && Date.now() < pingDeadline) {
      for (const p of await dev.readBatch(200)) {
        const ihl = (p[0] & 0x0f) * 4;
        if (isIpv4(p, 1, LOCAL, PEER) && p[ihl] === 8) {
          requests++;
          repliesWritten += dev.writeBatch([echoReply(p)]);
        }
      }
    }
    const pingOut = await pingChild.output();
    const pingText = dec.decode(pingOut.stdout);
    ping = {
      requests,
      repliesWritten,
      pingExit: pingOut.code,
      pingSummary: /\d+ packets transmitted.*/.exec(pingText)?.[0] ?? pingText.trim(),
    };
    await drain(dev);
  }

  // (c) Several queued packets come back from one read.
  const sender = Deno.listenDatagram({ transport: "udp", hostname: LOCAL, port: 0 });
  const sent = 20;
  for (let i = 0; i < sent; i++) {
    await sender.send(new TextEncoder().encode(`batch-${i}`), {
      transport: "udp",
      hostname: PEER,
      port: 9,
    });
  }
  sender.close();
  await sleep(50);
  const first = await dev.readBatch(1000);
  const rest: Uint8Array[] = [];
  for (let i = 0; i < 20; i++) {
    const more = await dev.readBatch(100);
    if (more.length === 0) break;
    rest.push(...more);
  }
  const all = [...first, ...rest];
  const batch = {
    sent,
    firstBatch: first.length,
    total: all.length,
    allUdpToPeer: all.every((p) => isIpv4(p, 17, LOCAL, PEER)),
  };

  // (d) Nothing queued: [] after about the timeout.
  await drain(dev);
  const idleTimeout = 300;
  const t0 = performance.now();
  const idlePackets = await dev.readBatch(idleTimeout);
  const idle = {
    packets: idlePackets.length,
    elapsedMs: Math.round(performance.now() - t0),
    timeoutMs: idleTimeout,
  };

  // (f) Figures: packets written to the device that the kernel forwards straight back out of it
  // (10.77.0.3 → 10.77.0.2 with forwarding on), read back in batches.
  let bench: ProbeResult["bench"] = null;
  let benchError: string | undefined;
  try {
    await Deno.writeTextFile("/proc/sys/net/ipv4/ip_forward", "1");
    for (const c of ["all", name]) {
      await Deno.writeTextFile(`/proc/sys/net/ipv4/conf/${c}/send_redirects`, "0");
    }
    const payload = new Uint8Array(mtu - 28).fill(0x61);
    const pkts = Array.from({ length: 64 }, (_, i) => udp4(OTHER, 50000 + i, PEER, 9, payload));
    const rounds = 300;
    let returned = 0;
    const b0 = performance.now();
    for (let r = 0; r < rounds; r++) {
      dev.writeBatch(pkts);
      let back = 0;
      while (back < pkts.length) {
        const got = await dev.readBatch(200);
        if (got.length === 0) break;
        back += got.filter((p) => isIpv4(p, 17, OTHER, PEER)).length;
      }
      if (back === 0) throw new Error(`round ${r}: no forwarded packet came back`);
      returned += back;
    }
    const seconds = (performance.now() - b0) / 1000;
    bench = {
      packets: rounds * pkts.length,
      returned,
      seconds: Math.round(seconds * 1000) / 1000,
      pktsPerSec: Math.round(returned / seconds),
    };
    await Deno.writeTextFile("/proc/sys/net/ipv4/ip_forward", "0");
    await drain(dev);
  } catch (err) {
    benchError = String(err);
  }

  // (e) close() with a read pending: the read returns [], the interface goes away.
  const pendingRead = dev.readBatch(400);
  const c0 = performance.now();
  const closing = dev.close();
  const pendingReadResult = (await pendingRead).length;
  await closing;
  await dev.close(); // idempotent
  const closeMs = Math.round(performance.now() - c0);
  const readAfterClose = (await dev.readBatch(10)).length;
  const writeAfterClose = dev.writeBatch([udp4(PEER, 1, LOCAL, 9, new Uint8Array(8))]);
  const linkGone = !(await sh(["ip", "link", "show", name], false)).ok;
  shim.close();

  return {
    name: dev.name,
    mtu: dev.mtu,
    slot: dev.slot,
    linkMtu,
    busyError,
    autoName,
    udp,
    ping,
    batch,
    idle,
    bench,
    benchError,
    close: { pendingReadResult, closeMs, readAfterClose, writeAfterClose, linkGone },
  };
}

console.log(JSON.stringify(await main()));
