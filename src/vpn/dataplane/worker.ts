/// <reference lib="deno.worker" />
/**
 * The VPN data plane's thread (docs/DATAPLANE.md): it waits in den_poll on the UDP socket and
 * every TUN device, and moves packets in batches — TUN → route → seal → one sendmmsg, and
 * recvmmsg → replay check → open → source check → TUN. Packets for a peer with no direct path
 * go to the daemon, which sends them through the peer session. Everything here is synchronous
 * (the thread never returns to its event loop while running), so control messages are read
 * with receiveMessageOnPort between polls.
 */
import { receiveMessageOnPort } from "node:worker_threads";
import { chachaOpen, chachaSealInPlace } from "../../crypto/aead.ts";
import { readU32BE as readU32, writeU32BE as writeU32 } from "../../crypto/encoding.ts";
import { RouteTable } from "../route_table.ts";
import {
  DATAGRAM_HEADER,
  DATAGRAM_OVERHEAD,
  DATAGRAM_TAG,
  DatagramKind,
  PROBE_BODY,
  readHeader,
  REPLY_BODY,
  writeHeader,
  writeNonce,
} from "../../wire/dataplane.ts";
import { isReflectorMessage } from "../../wire/reflector.ts";
import {
  decodePackets,
  NET_TAG_BYTES,
  packetDestination,
  packetProblem,
  packetSource,
} from "../../wire/vpn.ts";
import { ADDRESS_RECORD, addressRecord, addressText, DATAPLANE_SYMBOLS } from "./ffi.ts";
import type { DataPlaneSymbols } from "./ffi.ts";
import type { FromWorker, NetCounters, PeerPath, ToWorker, WorkerInit } from "./messages.ts";
import { JUMBO_DATAGRAM, PathState, SAFE_DATAGRAM } from "./path.ts";
import { ReflectJob } from "./reflect.ts";
import { ReplayWindow } from "./replay_window.ts";

const BATCH = 64;
/** Room per received datagram: the largest we send, and some. */
const UDP_SLOT = JUMBO_DATAGRAM + 256;
const POLL_MS = 50;
/**
 * After traffic, for this long, the thread wakes every WARM_POLL_MS and runs a throwaway seal:
 * a cold crypto path costs 60–150 µs per packet here, a warm one ~10 µs (docs/DATAPLANE.md,
 * "Latency"). DEN_DATAPLANE_WARM=0 turns it off (no wake-ups, higher latency for sparse traffic).
 */
const WARM_FOR_MS = Deno.env.get("DEN_DATAPLANE_WARM") === "0" ? 0 : 2_000;
const WARM_POLL_MS = 1;
const TICK_MS = 100;
const STATS_MS = 1_000;
/** Receive slots kept per peer: the newest and the ones it replaced recently. */
const SLOTS_PER_PEER = 3;
const SOCKET_BUFFER = 4 << 20;
const MAX_PACKETS_PER_SESSION_MESSAGE = 256;

interface Slot {
  peer: string;
  index: number;
  key: Uint8Array;
  window: ReplayWindow;
}

interface Peer {
  fp: string;
  send: { index: number; key: Uint8Array; counter: number } | null;
  path: PathState;
  slots: Slot[];
  wasDirect: boolean;
  /** Packets waiting to be sealed in this round (views into a TUN read buffer). */
  direct: Uint8Array[];
  viaSession: Map<string, Uint8Array[]>;
}

interface Net {
  name: string;
  key: number;
  tag: Uint8Array;
  fd: number;
  mtu: number;
  table: RouteTable;
  counters: NetCounters;
  rbuf: Uint8Array;
  rlens: Uint32Array;
  wbuf: Uint8Array;
  wlens: Uint32Array;
  wcount: number;
  woff: number;
}

class DataPlaneWorker {
  readonly #lib: DataPlaneSymbols;
  readonly #port: MessagePort;
  readonly #nets = new Map<string, Net>();
  readonly #netsByTag = new Map<number, Net>();
  readonly #peers = new Map<string, Peer>();
  readonly #slots = new Map<number, Slot>();
  readonly #records = new Map<string, Uint8Array>();
  readonly #drops: Record<string, number> = {};
  #udp = -1;
  #stopped = false;
  #fds = new Int32Array(1);
  #ready = new Uint8Array(1);
  #pollNets: Net[] = [];
  #fdsDirty = true;
  #nextTick = 0;
  #nextStats = 0;
  // UDP receive and send batches.
  readonly #rbuf = new Uint8Array(BATCH * UDP_SLOT);
  readonly #rlens = new Uint32Array(BATCH);
  readonly #raddrs = new Uint8Array(BATCH * ADDRESS_RECORD);
  readonly #sbuf = new Uint8Array(BATCH * UDP_SLOT);
  readonly #slens = new Uint32Array(BATCH);
  readonly #saddrs = new Uint8Array(BATCH * ADDRESS_RECORD);
  #scount = 0;
  #soff = 0;
  readonly #nonce = new Uint8Array(12);
  #lastTraffic = -Infinity;
  readonly #warmBuf = new Uint8Array(128);
  readonly #warmKey = new Uint8Array(32);
  /** The reflector round in progress (docs/NAT.md), and its request id. */
  #reflect: { id: number; job: ReflectJob } | null = null;

  constructor(lib: DataPlaneSymbols, port: MessagePort) {
    this.#lib = lib;
    this.#port = port;
  }

  openUdp(bind: string): void {
    const rec = addressRecord(bind);
    if (!rec) return this.#post({ t: "udp_failed", error: `not an address: ${bind}` });
    const fd = this.#lib.den_udp_open(rec, SOCKET_BUFFER);
    if (fd < 0) {
      return this.#post({ t: "udp_failed", error: `cannot bind UDP ${bind} (errno ${-fd})` });
    }
    this.#udp = fd;
    const local = new Uint8Array(ADDRESS_RECORD);
    this.#lib.den_udp_local(fd, local);
    this.#fdsDirty = true;
    this.#post({ t: "ready", local: addressText(local) });
  }

  run(): void {
    while (!this.#stopped) {
      if (this.#fdsDirty) this.#rebuildFds();
      const warm = performance.now() - this.#lastTraffic < WARM_FOR_MS;
      const n = this.#fds.length === 0 ? 0 : this.#lib.den_poll(
        this.#fds,
        this.#fds.length,
        warm ? WARM_POLL_MS : POLL_MS,
        this.#ready,
      );
      const now = performance.now();
      if (n > 0) this.#lastTraffic = now;
      else if (warm) this.#keepWarm();
      if (n > 0) {
        let i = 0;
        if (this.#udp >= 0) {
          if (this.#ready[0] !== 0) this.#receive(now);
          i = 1;
        }
        for (const net of this.#pollNets) {
          if (this.#ready[i++] !== 0 && this.#nets.get(net.name) === net) this.#readTun(net, now);
        }
        this.#flushSend();
      }
      if (now >= this.#nextTick) this.#tick(now);
      for (
        let m = receiveMessageOnPort(this.#port as never);
        m;
        m = receiveMessageOnPort(this.#port as never)
      ) {
        this.#control(m.message as ToWorker, now);
      }
    }
    if (this.#udp >= 0) this.#lib.den_close(this.#udp);
  }

  /** A throwaway seal and open: keeps the crypto path in cache between sparse packets. */
  #keepWarm(): void {
    const b = this.#warmBuf;
    chachaSealInPlace(
      this.#warmKey,
      writeNonce(this.#nonce, 0),
      b.subarray(DATAGRAM_HEADER),
      b.subarray(0, DATAGRAM_HEADER),
    );
    try {
      chachaOpen(
        this.#warmKey,
        this.#nonce,
        b.subarray(DATAGRAM_HEADER),
        b.subarray(0, DATAGRAM_HEADER),
      );
    } catch { /* cannot fail: same key and nonce */ }
  }

  #rebuildFds(): void {
    this.#pollNets = [...this.#nets.values()];
    const fds = this.#udp >= 0 ? [this.#udp] : [];
    for (const n of this.#pollNets) fds.push(n.fd);
    this.#fds = new Int32Array(fds);
    this.#ready = new Uint8Array(Math.max(1, fds.length));
    this.#fdsDirty = false;
  }

  #post(msg: FromWorker, transfer: Transferable[] = []): void {
    this.#port.postMessage(msg, transfer);
  }

  #drop(reason: string, n = 1): void {
    this.#drops[reason] = (this.#drops[reason] ?? 0) + n;
  }

  #control(msg: ToWorker, now: number): void {
    switch (msg.t) {
      case "net": {
        const net: Net = {
          name: msg.name,
          key: readU32(msg.tag, 0),
          tag: msg.tag,
          fd: msg.fd,
          mtu: msg.mtu,
          table: new RouteTable(),
          counters: { packets_in: 0, packets_out: 0, bytes_in: 0, bytes_out: 0, drops: {} },
          rbuf: new Uint8Array(BATCH * (msg.mtu + 64)),
          rlens: new Uint32Array(BATCH),
          wbuf: new Uint8Array(BATCH * (msg.mtu + 64)),
          wlens: new Uint32Array(BATCH),
          wcount: 0,
          woff: 0,
        };
        this.#nets.set(msg.name, net);
        this.#netsByTag.set(net.key, net);
        this.#fdsDirty = true;
        break;
      }
      case "net_close": {
        const net = this.#nets.get(msg.name);
        if (net) {
          this.#nets.delete(msg.name);
          this.#netsByTag.delete(net.key);
          this.#fdsDirty = true;
        }
        this.#post({ t: "net_closed", name: msg.name });
        break;
      }
      case "routes": {
        const net = this.#nets.get(msg.net);
        if (!net) break;
        const table = new RouteTable();
        const byPeer = new Map<
          string,
          { prefixes: typeof msg.routes[number]["prefix"][]; metric: number }
        >();
        for (const r of msg.routes) {
          const e = byPeer.get(r.peer) ?? { prefixes: [], metric: r.metric };
          e.prefixes.push(r.prefix);
          byPeer.set(r.peer, e);
        }
        for (const [peer, e] of byPeer) {
          table.announce(peer, e.prefixes, 0, Number.MAX_SAFE_INTEGER, e.metric);
        }
        net.table = table;
        break;
      }
      case "slot": {
        const peer = this.#peer(msg.peer, now);
        const slot: Slot = {
          peer: msg.peer,
          index: msg.index,
          key: msg.key,
          window: new ReplayWindow(),
        };
        peer.slots.push(slot);
        this.#slots.set(msg.index, slot);
        while (peer.slots.length > SLOTS_PER_PEER) this.#slots.delete(peer.slots.shift()!.index);
        break;
      }
      case "send": {
        const peer = this.#peer(msg.peer, now);
        peer.send = { index: msg.index, key: msg.key, counter: 0 };
        peer.path.setCandidates(msg.candidates, now);
        this.#nextTick = now; // probe at once
        break;
      }
      case "peer_gone": {
        const peer = this.#peers.get(msg.peer);
        if (!peer) break;
        for (const s of peer.slots) this.#slots.delete(s.index);
        this.#peers.delete(msg.peer);
        break;
      }
      case "reflect": {
        if (this.#reflect) this.#post({ t: "reflexive", id: this.#reflect.id, results: [] });
        const job = new ReflectJob(
          msg.targets,
          now,
          (n) => crypto.getRandomValues(new Uint8Array(n)),
        );
        if (this.#udp < 0) {
          this.#post({ t: "reflexive", id: msg.id, results: job.results() });
          break;
        }
        this.#reflect = { id: msg.id, job };
        this.#nextTick = now; // the first requests at once
        break;
      }
      case "stop":
        this.#stopped = true;
        break;
    }
  }

  #peer(fp: string, now: number): Peer {
    let p = this.#peers.get(fp);
    if (!p) {
      p = {
        fp,
        send: null,
        path: new PathState(now),
        slots: [],
        wasDirect: false,
        direct: [],
        viaSession: new Map(),
      };
      this.#peers.set(fp, p);
    }
    return p;
  }

  #record(text: string): Uint8Array | null {
    let rec = this.#records.get(text);
    if (!rec) {
      const made = addressRecord(text);
      if (!made) return null;
      if (this.#records.size > 1024) this.#records.clear();
      this.#records.set(text, made);
      rec = made;
    }
    return rec;
  }

  // ---- TUN → peers

  #readTun(net: Net, now: number): void {
    const slot = net.mtu + 64;
    const n = this.#lib.den_tun_read_batch(
      net.fd,
      net.rbuf,
      net.rbuf.length,
      net.rlens,
      BATCH,
      slot,
      0,
    );
    if (n <= 0) return;
    const touched: Peer[] = [];
    let off = 0;
    for (let i = 0; i < n; i++) {
      const len = net.rlens[i];
      const p = net.rbuf.subarray(off, off + len);
      off += len;
      if (len > net.mtu) {
        countDrop(net, "too_big");
        continue;
      }
      const dst = packetProblem(p) === null ? packetDestination(p) : null;
      if (!dst) {
        countDrop(net, "malformed");
        continue;
      }
      const route = net.table.lookup(dst);
      if (!route) {
        countDrop(net, "no_route");
        continue;
      }
      const peer = this.#peer(route.peer, now);
      if (peer.direct.length === 0 && peer.viaSession.size === 0) touched.push(peer);
      if (peer.send && peer.path.direct(now)) peer.direct.push(p);
      else {
        const list = peer.viaSession.get(net.name);
        if (list) list.push(p);
        else peer.viaSession.set(net.name, [p]);
      }
      net.counters.packets_out++;
      net.counters.bytes_out += len;
    }
    for (const peer of touched) {
      if (peer.direct.length > 0) this.#sealData(peer, net, now);
      for (const [name, list] of peer.viaSession) this.#toSession(peer.fp, name, list);
      peer.direct = [];
      peer.viaSession.clear();
    }
  }

  /** The peer's packets, batched into as few datagrams as its path allows, sealed and queued. */
  #sealData(peer: Peer, net: Net, now: number): void {
    const send = peer.send!;
    const to = this.#record(peer.path.endpoint(now)!);
    if (!to) return;
    const max = peer.path.maxDatagram(now);
    const list = peer.direct;
    let i = 0;
    while (i < list.length) {
      const need = Math.max(max, DATAGRAM_OVERHEAD + NET_TAG_BYTES + 2 + list[i].length);
      const at = this.#reserve(need);
      let p = at + DATAGRAM_HEADER;
      this.#sbuf.set(net.tag, p);
      p += NET_TAG_BYTES;
      const limit = at + need - DATAGRAM_TAG;
      do {
        const pkt = list[i];
        if (p + 2 + pkt.length > limit) break;
        this.#sbuf[p] = pkt.length >> 8;
        this.#sbuf[p + 1] = pkt.length & 0xff;
        this.#sbuf.set(pkt, p + 2);
        p += 2 + pkt.length;
        i++;
      } while (i < list.length);
      this.#seal(send, DatagramKind.data, at, p);
      this.#commit(at, p + DATAGRAM_TAG, to);
    }
  }

  /** Seals the plaintext at [at + header, end) in place; the tag goes after `end`. */
  #seal(send: NonNullable<Peer["send"]>, kind: 1 | 2 | 3, at: number, end: number): void {
    const counter = send.counter++;
    writeHeader(this.#sbuf, at, kind, send.index, counter);
    chachaSealInPlace(
      send.key,
      writeNonce(this.#nonce, counter),
      this.#sbuf.subarray(at + DATAGRAM_HEADER, end + DATAGRAM_TAG),
      this.#sbuf.subarray(at, at + DATAGRAM_HEADER),
    );
  }

  #reserve(bytes: number): number {
    if (this.#scount === BATCH || this.#soff + bytes > this.#sbuf.length) this.#flushSend();
    return this.#soff;
  }

  #commit(at: number, end: number, to: Uint8Array): void {
    this.#slens[this.#scount] = end - at;
    this.#saddrs.set(to, this.#scount * ADDRESS_RECORD);
    this.#scount++;
    this.#soff = end;
  }

  #flushSend(): void {
    if (this.#scount === 0) return;
    const sent = this.#lib.den_udp_send_batch(
      this.#udp,
      this.#sbuf,
      this.#slens,
      this.#saddrs,
      this.#scount,
    );
    if (sent < this.#scount) this.#drop("send_failed", this.#scount - Math.max(0, sent));
    this.#scount = 0;
    this.#soff = 0;
  }

  #toSession(peer: string, net: string, list: Uint8Array[]): void {
    for (let start = 0; start < list.length; start += MAX_PACKETS_PER_SESSION_MESSAGE) {
      const part = list.slice(start, start + MAX_PACKETS_PER_SESSION_MESSAGE);
      const packets = new Uint8Array(part.reduce((n, p) => n + p.length, 0));
      const lens: number[] = [];
      let at = 0;
      for (const p of part) {
        packets.set(p, at);
        at += p.length;
        lens.push(p.length);
      }
      this.#post({ t: "session", peer, net, packets, lens }, [packets.buffer]);
    }
  }

  // ---- peers → TUN

  #receive(now: number): void {
    for (let round = 0; round < 8; round++) {
      const n = this.#lib.den_udp_recv_batch(
        this.#udp,
        this.#rbuf,
        this.#rbuf.length,
        this.#rlens,
        this.#raddrs,
        BATCH,
        UDP_SLOT,
      );
      if (n <= 0) break;
      let off = 0;
      for (let i = 0; i < n; i++) {
        const len = this.#rlens[i];
        const d = this.#rbuf.subarray(off, off + len);
        off += len;
        this.#datagram(d, this.#raddrs.subarray(i * ADDRESS_RECORD, (i + 1) * ADDRESS_RECORD), now);
      }
      if (n < BATCH) break;
    }
    for (const net of this.#nets.values()) this.#flushTun(net);
  }

  #datagram(d: Uint8Array, from: Uint8Array, now: number): void {
    // Den datagrams start with their kind (1..3): "DENR" can only be a reflector's answer.
    if (isReflectorMessage(d)) return this.#reflected(d, from, now);
    const h = readHeader(d);
    if (!h) return this.#drop("malformed");
    const slot = this.#slots.get(h.index);
    if (!slot) return this.#drop("unknown_slot");
    if (!slot.window.check(h.counter)) return this.#drop("replayed");
    let plain: Uint8Array;
    try {
      plain = chachaOpen(
        slot.key,
        writeNonce(this.#nonce, h.counter),
        d.subarray(DATAGRAM_HEADER),
        d.subarray(0, DATAGRAM_HEADER),
      );
    } catch {
      return this.#drop("auth_failed");
    }
    slot.window.mark(h.counter);
    const peer = this.#peers.get(slot.peer);
    if (!peer) return;
    if (h.kind === DatagramKind.data) return this.#deliver(slot.peer, plain);
    if (h.kind === DatagramKind.probe) {
      if (plain.length < PROBE_BODY) return this.#drop("malformed");
      if (!peer.send) return this.#drop("no_key");
      // A peer-reflexive candidate: where the peer's probes come from is worth probing too.
      if (peer.path.learn(addressText(from), now)) this.#nextTick = now;
      const at = this.#reserve(DATAGRAM_OVERHEAD + REPLY_BODY);
      const body = at + DATAGRAM_HEADER;
      this.#sbuf.set(plain.subarray(0, 4), body);
      writeU32(this.#sbuf, body + 4, d.length);
      this.#seal(peer.send, DatagramKind.reply, at, body + REPLY_BODY);
      this.#commit(at, body + REPLY_BODY + DATAGRAM_TAG, from);
      return;
    }
    if (plain.length < REPLY_BODY) return this.#drop("malformed");
    if (peer.path.onReply(readU32(plain, 0), now)) this.#pathChanged(peer, now);
  }

  #deliver(fp: string, plain: Uint8Array): void {
    const msg = decodePackets(plain);
    if (!msg) return this.#drop("malformed");
    const net = this.#netsByTag.get(readU32(msg.tag, 0));
    if (!net) return this.#drop("unknown_network");
    for (const p of msg.packets) {
      if (p.length > net.mtu) {
        countDrop(net, "too_big");
        continue;
      }
      const src = packetSource(p);
      if (!src) {
        countDrop(net, "malformed");
        continue;
      }
      if (net.table.lookup(src)?.peer !== fp) {
        countDrop(net, "spoofed");
        continue;
      }
      if (net.wcount === BATCH || net.woff + p.length > net.wbuf.length) this.#flushTun(net);
      net.wbuf.set(p, net.woff);
      net.wlens[net.wcount++] = p.length;
      net.woff += p.length;
      net.counters.packets_in++;
      net.counters.bytes_in += p.length;
    }
  }

  #flushTun(net: Net): void {
    if (net.wcount === 0) return;
    const written = this.#lib.den_tun_write_batch(net.fd, net.wbuf, net.wlens, net.wcount);
    if (written < net.wcount) countDrop(net, "tun_full", net.wcount - Math.max(0, written));
    net.wcount = 0;
    net.woff = 0;
  }

  #reflected(d: Uint8Array, from: Uint8Array, now: number): void {
    const r = this.#reflect;
    if (!r || !r.job.onResponse(d, addressText(from), now)) {
      return this.#drop("reflector_unexpected");
    }
    if (r.job.done(now)) this.#endReflect();
  }

  #endReflect(): void {
    const r = this.#reflect!;
    this.#reflect = null;
    this.#post({ t: "reflexive", id: r.id, results: r.job.results() });
  }

  #tickReflect(now: number): void {
    const job = this.#reflect?.job;
    if (!job) return;
    for (const { to, request } of job.due(now)) {
      const rec = this.#record(to);
      if (!rec) continue;
      const at = this.#reserve(request.length);
      this.#sbuf.set(request, at);
      this.#commit(at, at + request.length, rec);
    }
    if (job.done(now)) this.#endReflect();
  }

  // ---- timers

  #tick(now: number): void {
    this.#nextTick = now + TICK_MS;
    if (this.#udp >= 0) {
      for (const peer of this.#peers.values()) {
        if (!peer.send) continue;
        for (const probe of peer.path.due(now)) {
          const to = this.#record(probe.to);
          if (!to) continue;
          const size = Math.max(DATAGRAM_OVERHEAD + PROBE_BODY, probe.size);
          const at = this.#reserve(size);
          const body = at + DATAGRAM_HEADER;
          this.#sbuf.fill(0, body, at + size);
          writeU32(this.#sbuf, body, probe.id);
          this.#seal(peer.send, DatagramKind.probe, at, at + size - DATAGRAM_TAG);
          this.#commit(at, at + size, to);
        }
        if (peer.path.direct(now) !== peer.wasDirect) this.#pathChanged(peer, now);
      }
      this.#tickReflect(now);
      this.#flushSend();
    }
    if (now >= this.#nextStats) {
      this.#nextStats = now + STATS_MS;
      this.#post({
        t: "stats",
        nets: Object.fromEntries([...this.#nets].map(([name, n]) => [name, n.counters])),
        peers: Object.fromEntries([...this.#peers].map(([fp, p]) => [fp, pathOf(p, now)])),
        drops: { ...this.#drops },
      });
    }
  }

  #pathChanged(peer: Peer, now: number): void {
    const path = pathOf(peer, now);
    if (path.direct === peer.wasDirect) return;
    peer.wasDirect = path.direct;
    this.#post({ t: "path", peer: peer.fp, path });
  }
}

function pathOf(p: Peer, now: number): PeerPath {
  return {
    direct: p.path.direct(now),
    endpoint: p.path.endpoint(now),
    rtt_ms: p.path.rttMs === null ? null : Math.round(p.path.rttMs * 100) / 100,
    batched: p.path.direct(now) && p.path.maxDatagram(now) > SAFE_DATAGRAM,
  };
}

function countDrop(net: Net, reason: string, n = 1): void {
  net.counters.drops[reason] = (net.counters.drops[reason] ?? 0) + n;
}

self.onmessage = (e: MessageEvent<WorkerInit>) => {
  const init = e.data;
  const post = (msg: FromWorker) => init.port.postMessage(msg);
  let lib: Deno.DynamicLibrary<typeof DATAPLANE_SYMBOLS>;
  try {
    lib = Deno.dlopen(init.shimPath, DATAPLANE_SYMBOLS);
  } catch (err) {
    post({ t: "error", message: `cannot load the shim: ${(err as Error).message}` });
    return;
  }
  const worker = new DataPlaneWorker(lib.symbols, init.port);
  worker.openUdp(init.bind);
  try {
    worker.run();
  } catch (err) {
    post({ t: "error", message: `data plane stopped: ${(err as Error).stack ?? err}` });
  }
  lib.close();
  post({ t: "stopped" });
  self.close();
};
