/**
 * RelayServer in this process on 127.0.0.1:0, driven by Deno's WebSocket client and, where a
 * client must misbehave (never read, never pong, break the protocol), by raw TCP. Timeouts and
 * limits are shrunk through the options so the whole file runs in seconds.
 */
import assert from "node:assert/strict";
import { RelayServer, type RelayServerOptions } from "../../relay/server.ts";
import { encodeFrame, Opcode } from "../../relay/ws/frames.ts";
import { generateIdentity, type Identity } from "../../src/identity/keys.ts";
import { Logger } from "../../src/log/logger.ts";
import {
  decodeChallenge,
  decodeDeliver,
  decodeError,
  decodeNoRoute,
  decodeReady,
  encodeSend,
  mailboxIdOf,
  signAuth,
} from "../../src/wire/relay_mailbox.ts";
import { encodeJoin } from "../../src/wire/relay_rooms.ts";

type Msg =
  | { kind: "text"; text: string }
  | { kind: "binary"; data: Uint8Array }
  | { kind: "close"; code: number; reason: string };

const enc = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Deno's WebSocket with a queue of what arrived. */
class Client {
  readonly ws: WebSocket;
  readonly #queue: Msg[] = [];
  #wake: (() => void) | null = null;
  readonly closed: Promise<void>;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.binaryType = "arraybuffer";
    const push = (m: Msg) => {
      this.#queue.push(m);
      this.#wake?.();
    };
    ws.onmessage = (e) =>
      push(
        typeof e.data === "string"
          ? { kind: "text", text: e.data }
          : { kind: "binary", data: new Uint8Array(e.data) },
      );
    this.closed = new Promise((r) =>
      ws.addEventListener("close", (e) => {
        push({ kind: "close", code: e.code, reason: e.reason });
        r();
      })
    );
  }

  static async open(url: string): Promise<Client> {
    const ws = new WebSocket(url);
    const c = new Client(ws);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`cannot open ${url}`));
    });
    return c;
  }

  get pending(): number {
    return this.#queue.length;
  }

  async next(timeoutMs = 3000): Promise<Msg> {
    const end = Date.now() + timeoutMs;
    while (this.#queue.length === 0) {
      const left = end - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a message");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.#wake = r;
        timer = setTimeout(r, left);
      });
      clearTimeout(timer);
      this.#wake = null;
    }
    return this.#queue.shift()!;
  }

  async text(): Promise<string> {
    const m = await this.next();
    assert.equal(m.kind, "text", `expected text, got ${JSON.stringify(m)}`);
    return (m as { text: string }).text;
  }

  async json(): Promise<Record<string, unknown>> {
    return JSON.parse(await this.text());
  }

  async binary(): Promise<Uint8Array> {
    const m = await this.next();
    assert.equal(m.kind, "binary", `expected binary, got ${JSON.stringify(m)}`);
    return (m as { data: Uint8Array }).data;
  }

  send(data: string | Uint8Array): void {
    this.ws.send(data);
  }

  async close(): Promise<void> {
    if (this.ws.readyState < WebSocket.CLOSING) this.ws.close();
    await this.closed;
  }
}

/** ERROR {code} as JSON, then the relay closes with `wsCode`. */
async function expectRoomError(c: Client, code: number, wsCode = 1008): Promise<void> {
  const e = await c.json();
  assert.equal(e.type, "ERROR");
  assert.equal(e.code, code, JSON.stringify(e));
  const end = await c.next();
  assert.equal(end.kind, "close", JSON.stringify(end));
  assert.equal((end as { code: number }).code, wsCode);
}

async function expectMailboxError(c: Client, code: number): Promise<void> {
  const e = decodeError(await c.binary());
  assert.equal(e?.code, code, JSON.stringify(e));
  assert.equal((await c.next()).kind, "close");
}

/** A hand-driven client over TCP: it reads only when told to. */
class Raw {
  readonly conn: Deno.TcpConn;
  #buf = new Uint8Array(0);

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  static async connect(port: number): Promise<Raw> {
    return new Raw(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Sends an upgrade request; resolves with the response status. */
  static async upgrade(port: number, path = "/", headers: string[] = []): Promise<[number, Raw]> {
    const raw = await Raw.connect(port);
    await raw.write(enc.encode(
      [
        `GET ${path} HTTP/1.1`,
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        ...headers,
      ].join("\r\n") + "\r\n\r\n",
    ));
    const head = await raw.readHead();
    return [Number(head.split(" ")[1]), raw];
  }

  async write(b: Uint8Array): Promise<void> {
    for (let off = 0; off < b.length;) off += await this.conn.write(b.subarray(off));
  }

  sendFrame(opcode: number, payload: Uint8Array | string, mask = true): Promise<void> {
    const p = typeof payload === "string" ? enc.encode(payload) : payload;
    return this.write(encodeFrame(opcode, p, mask ? { mask: Uint8Array.of(1, 2, 3, 4) } : {}));
  }

  /** False at EOF. */
  async #fill(n: number): Promise<boolean> {
    while (this.#buf.length < n) {
      const chunk = new Uint8Array(65536);
      const got = await this.conn.read(chunk);
      if (got === null) return false;
      const merged = new Uint8Array(this.#buf.length + got);
      merged.set(this.#buf);
      merged.set(chunk.subarray(0, got), this.#buf.length);
      this.#buf = merged;
    }
    return true;
  }

  async readHead(): Promise<string> {
    for (let n = 1;; n++) {
      if (!await this.#fill(n)) return new TextDecoder().decode(this.#buf);
      const text = new TextDecoder().decode(this.#buf.subarray(0, n));
      if (text.endsWith("\r\n\r\n")) {
        this.#buf = this.#buf.slice(n);
        return text;
      }
    }
  }

  /** Everything until the server closes. */
  async readAll(): Promise<string> {
    while (await this.#fill(this.#buf.length + 1));
    return new TextDecoder().decode(this.#buf);
  }

  /** The next server frame, or null at EOF. */
  async frame(): Promise<{ opcode: number; payload: Uint8Array } | null> {
    if (!await this.#fill(2)) return null;
    let len = this.#buf[1] & 0x7f;
    let header = 2;
    if (len === 126) {
      header = 4;
      if (!await this.#fill(4)) return null;
      len = (this.#buf[2] << 8) | this.#buf[3];
    } else if (len === 127) {
      header = 10;
      if (!await this.#fill(10)) return null;
      len = Number(new DataView(this.#buf.buffer, this.#buf.byteOffset + 2, 8).getBigUint64(0));
    }
    if (!await this.#fill(header + len)) return null;
    const opcode = this.#buf[0] & 0x0f;
    const payload = this.#buf.slice(header, header + len);
    this.#buf = this.#buf.slice(header + len);
    return { opcode, payload };
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

/** Starts a relay with test-sized timeouts; `log` collects every line it writes. */
async function withRelay(
  opts: Partial<RelayServerOptions>,
  fn: (relay: RelayServer, log: string[]) => Promise<void>,
): Promise<void> {
  const log: string[] = [];
  const relay = await RelayServer.start({
    hostname: "127.0.0.1",
    port: 0,
    headTimeoutMs: 1000,
    firstMessageTimeoutMs: 1000,
    closeTimeoutMs: 300,
    log: new Logger("relay", { level: "debug", sink: (l) => log.push(l) }),
    ...opts,
  });
  try {
    await fn(relay, log);
  } finally {
    await relay.close();
  }
}

/** The value of one sample in the Prometheus text, 0 when absent. */
function metric(relay: RelayServer, sample: string): number {
  const line = relay.metrics.render().split("\n").find((l) => l.startsWith(sample + " "));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

const dropped = (relay: RelayServer, reason: string) =>
  metric(relay, `den_relay_frames_dropped_total{reason="${reason}"}`);
const refused = (relay: RelayServer, reason: string) =>
  metric(relay, `den_relay_connections_refused_total{reason="${reason}"}`);

async function pair(url: string, room: string): Promise<[Client, Client]> {
  const a = await Client.open(url);
  const b = await Client.open(url);
  a.send(encodeJoin(room));
  b.send(encodeJoin(room));
  assert.deepEqual(await a.json(), { type: "PEER_FOUND" });
  assert.deepEqual(await b.json(), { type: "PEER_FOUND" });
  return [a, b];
}

async function closeAll(...clients: Client[]): Promise<void> {
  await Promise.all(clients.map((c) => c.close()));
}

let identities: Identity[] = [];
async function identity(i: number): Promise<Identity> {
  while (identities.length <= i) identities = [...identities, await generateIdentity(`n${i}`)];
  return identities[i];
}

/** A mailbox client that has answered the challenge and seen READY. */
async function mailbox(relay: RelayServer, who: Identity): Promise<Client> {
  const c = await Client.open(`${relay.url}/v1/mailbox`);
  const nonce = decodeChallenge(await c.binary());
  assert.ok(nonce, "CHALLENGE first");
  c.send(await signAuth(who.signing, who.publicKeys, nonce));
  assert.deepEqual(decodeReady(await c.binary()), mailboxIdOf(who.publicKeys));
  return c;
}

// ---------------------------------------------------------------- HTTP

Deno.test("relay server: /healthz with Date, / and 404/405, no WebSocket needed", async () => {
  await withRelay({}, async (relay) => {
    const base = `http://${relay.address}`;
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), "ok\n");
    const date = Date.parse(health.headers.get("date") ?? "");
    assert.ok(Math.abs(date - Date.now()) < 5000, "Date is the relay's clock");
    const root = await fetch(`${base}/`);
    assert.match(await root.text(), /den relay/);
    const missing = await fetch(`${base}/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const post = await fetch(`${base}/healthz`, { method: "POST", body: "x" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
    assert.equal(refused(relay, "not_found"), 1);
    assert.equal(refused(relay, "method"), 1);
  });
});

Deno.test("relay server: request heads are bounded in size and time", async () => {
  await withRelay({ headTimeoutMs: 200 }, async (relay) => {
    const port = Number(relay.address.split(":")[1]);
    const big = await Raw.connect(port);
    await big.write(enc.encode(`GET / HTTP/1.1\r\nX-Pad: ${"a".repeat(9000)}\r\n\r\n`)).catch(
      () => {},
    );
    assert.match(await big.readAll(), /^HTTP\/1\.1 431 /);
    big.close();

    const slow = await Raw.connect(port);
    await slow.write(enc.encode("GET / HTTP/1.1\r\n"));
    const t0 = Date.now();
    assert.equal(await slow.readAll(), "", "closed without an answer");
    assert.ok(Date.now() - t0 < 1500);
    slow.close();

    const garbage = await Raw.connect(port);
    await garbage.write(enc.encode("\x16\x03\x01 not http\r\n\r\n"));
    assert.match(await garbage.readAll(), /^HTTP\/1\.1 400 /);
    garbage.close();
    assert.equal(refused(relay, "head_too_large"), 1);
    assert.equal(refused(relay, "timeout"), 1);
    assert.equal(refused(relay, "bad_request"), 1);
  });
});

// ---------------------------------------------------------------- rooms

Deno.test("relay server: rooms pair, forward SIGNAL verbatim, PEER_LEFT, refuse a third", async () => {
  await withRelay({}, async (relay, log) => {
    const room = "SECRET2026ROOM";
    const [a, b] = await pair(relay.url, room);
    const odd = `{ "type":"SIGNAL",  "kind":"MSG", "payload":"caf\\u00e9 ☕" }`;
    a.send(odd);
    assert.equal(await b.text(), odd, "byte for byte");
    b.send('{"type":"SIGNAL","kind":"KEY_EXCHANGE","key":"AAAA"}');
    assert.equal(await a.text(), '{"type":"SIGNAL","kind":"KEY_EXCHANGE","key":"AAAA"}');

    const c = await Client.open(`${relay.url}/ws`);
    c.send(encodeJoin(room));
    await expectRoomError(c, 409);

    await b.close();
    assert.deepEqual(await a.json(), { type: "PEER_LEFT" });
    a.send('{"type":"SIGNAL","kind":"MSG"}');
    assert.deepEqual((await a.json()).code, 404, "alone: ERROR 404 and the connection stays");
    const d = await Client.open(relay.url);
    d.send(encodeJoin(room));
    assert.deepEqual(await a.json(), { type: "PEER_FOUND" });
    assert.deepEqual(await d.json(), { type: "PEER_FOUND" });
    d.send('{"type":"SIGNAL","n":1}');
    assert.equal(await a.text(), '{"type":"SIGNAL","n":1}');
    await closeAll(a, d);

    assert.equal(metric(relay, 'den_relay_frames_forwarded_total{kind="room"}'), 3);
    assert.equal(dropped(relay, "room_full"), 1);
    assert.equal(dropped(relay, "no_peer"), 1);
    assert.ok(log.some((l) => /connection opened/.test(l)), "debug logging was on");
    assert.ok(!log.some((l) => l.includes(room)), "room codes are never logged");
  });
});

Deno.test("relay server: abuse in one room leaves another working", async () => {
  await withRelay({ roomRate: 5 }, async (relay) => {
    const [c, d] = await pair(relay.url, "CALMROOM1");
    const talk = async () => {
      c.send('{"type":"SIGNAL","x":1}');
      assert.equal(await d.text(), '{"type":"SIGNAL","x":1}');
    };

    const big = await Client.open(relay.url);
    big.send(`{"type":"SIGNAL","p":"${"A".repeat(70_000)}"}`);
    await expectRoomError(big, 413, 1009);
    await talk();

    for (
      const [bad, code] of [
        ["{not json", 400],
        ['{"type":"HELLO"}', 400],
        ['{"type":"SIGNAL"}', 400], // before JOIN
        [encodeJoin("lowercase"), 400],
      ] as const
    ) {
      const x = await Client.open(relay.url);
      x.send(bad);
      await expectRoomError(x, code);
    }
    const bin = await Client.open(relay.url);
    bin.send(Uint8Array.of(1, 2, 3));
    await expectRoomError(bin, 400);

    // roomRate 5: burst 15, so 40 at once must hit the limit.
    const [f, g] = await pair(relay.url, "FLOODROOM");
    for (let i = 0; i < 40; i++) f.send(`{"type":"SIGNAL","i":${i}}`);
    let seen = 0;
    while ((await g.json()).type === "SIGNAL") seen++;
    assert.ok(seen >= 12 && seen < 40, `forwarded ${seen} before the cut`);
    await expectRoomError(f, 429);
    await talk();
    await closeAll(c, d, f, g);

    assert.equal(dropped(relay, "too_large"), 1);
    assert.equal(dropped(relay, "malformed"), 1);
    assert.equal(dropped(relay, "unknown_type"), 1);
    assert.equal(dropped(relay, "not_joined"), 1);
    assert.equal(dropped(relay, "bad_room"), 1);
    assert.equal(dropped(relay, "binary_in_room"), 1);
    assert.equal(dropped(relay, "rate_limit"), 1);
  });
});

Deno.test("relay server: no JOIN or AUTH in time is ERROR 408", async () => {
  await withRelay({ firstMessageTimeoutMs: 150 }, async (relay) => {
    const room = await Client.open(relay.url);
    const box = await Client.open(`${relay.url}/v1/mailbox`);
    await expectRoomError(room, 408);
    assert.ok(decodeChallenge(await box.binary()));
    await expectMailboxError(box, 408);
    assert.equal(dropped(relay, "timeout"), 2);
  });
});

Deno.test("relay server: connection limits answer 429 and 503 before the upgrade", async () => {
  await withRelay({ maxConnsPerIp: 2 }, async (relay) => {
    const port = Number(relay.address.split(":")[1]);
    const a = await Client.open(relay.url);
    const b = await Client.open(relay.url);
    const [status, raw] = await Raw.upgrade(port);
    assert.equal(status, 429);
    raw.close();
    await a.close();
    await sleep(50); // the slot is free once the relay has seen the close
    const c = await Client.open(relay.url);
    await closeAll(b, c);
    assert.equal(refused(relay, "per_ip"), 1);
  });
  await withRelay({ maxConns: 2, maxConnsPerIp: 10 }, async (relay) => {
    const port = Number(relay.address.split(":")[1]);
    const a = await Client.open(relay.url);
    const b = await Client.open(`${relay.url}/v1/mailbox`);
    const [status, raw] = await Raw.upgrade(port);
    assert.equal(status, 503);
    raw.close();
    await closeAll(a, b);
    assert.equal(refused(relay, "max_conns"), 1);
  });
});

Deno.test("relay server: behind a trusted proxy, X-Forwarded-For is the address", async () => {
  await withRelay({ maxConnsPerIp: 1, trustedProxies: ["127.0.0.1"] }, async (relay) => {
    const port = Number(relay.address.split(":")[1]);
    const [s1, r1] = await Raw.upgrade(port, "/", ["X-Forwarded-For: 203.0.113.1"]);
    const [s2, r2] = await Raw.upgrade(port, "/", ["X-Forwarded-For: 9.9.9.9, 203.0.113.2"]);
    const [s3, r3] = await Raw.upgrade(port, "/", ["X-Forwarded-For: 203.0.113.1"]);
    assert.deepEqual([s1, s2, s3], [101, 101, 429]);
    for (const r of [r1, r2, r3]) r.close();
  });
});

Deno.test("relay server: a slow consumer is disconnected, not buffered", async () => {
  await withRelay({ roomRate: 1_000_000 }, async (relay) => {
    const port = Number(relay.address.split(":")[1]);
    const flooder = await Client.open(relay.url);
    flooder.send(encodeJoin("SLOWROOM1"));
    const [status, sleeper] = await Raw.upgrade(port);
    assert.equal(status, 101);
    await sleeper.sendFrame(Opcode.text, encodeJoin("SLOWROOM1")); // and never reads again
    assert.deepEqual(await flooder.json(), { type: "PEER_FOUND" });

    const signal = `{"type":"SIGNAL","p":"${"x".repeat(60_000)}"}`;
    let sent = 0;
    while (flooder.pending === 0) {
      assert.ok(sent < 2000, "the sleeper should have been dropped by now");
      if (flooder.ws.bufferedAmount < 1 << 20) {
        flooder.send(signal);
        sent++;
      } else {
        await sleep(1);
      }
    }
    assert.deepEqual(await flooder.json(), { type: "PEER_LEFT" });
    assert.equal(dropped(relay, "slow_consumer"), 1);
    sleeper.close();
    await flooder.close();
  });
});

Deno.test("relay server: pings keep a live client; a silent one is closed", async () => {
  // 300 ms, not less: the relay shares this process's event loop with the live client, whose
  // pong must come back within two intervals even when the machine is loaded.
  await withRelay({ pingIntervalMs: 300 }, async (relay) => {
    const port = Number(relay.address.split(":")[1]);
    const [, silent] = await Raw.upgrade(port);
    await silent.sendFrame(Opcode.text, encodeJoin("PINGROOM1"));
    const live = await Client.open(relay.url); // Deno's client answers pings
    live.send(encodeJoin("PINGROOM1"));
    const opcodes: number[] = [];
    for (let f = await silent.frame(); f !== null; f = await silent.frame()) {
      opcodes.push(f.opcode);
      if (f.opcode === Opcode.close) assert.equal((f.payload[0] << 8) | f.payload[1], 1008);
    }
    assert.ok(opcodes.includes(Opcode.ping), `pings sent: ${opcodes}`);
    assert.equal(opcodes.at(-1), Opcode.close);
    silent.close();
    assert.deepEqual(await live.json(), { type: "PEER_FOUND" });
    assert.deepEqual(await live.json(), { type: "PEER_LEFT" });
    await sleep(1200); // four intervals: answered pings keep it open
    assert.equal(live.ws.readyState, WebSocket.OPEN);
    await live.close();
    assert.equal(dropped(relay, "idle"), 1);
  });
});

Deno.test("relay server: protocol violations close with 1002 / 1007 after ERROR 400", async () => {
  await withRelay({}, async (relay) => {
    const port = Number(relay.address.split(":")[1]);
    const cases: [string, (r: Raw) => Promise<void>, number][] = [
      ["unmasked frame", (r) => r.sendFrame(Opcode.text, encodeJoin("ABCDEFGH"), false), 1002],
      ["reserved opcode", (r) => r.sendFrame(0x3, "x"), 1002],
      ["invalid UTF-8", (r) => r.sendFrame(Opcode.text, Uint8Array.of(0x7b, 0xff)), 1007],
    ];
    for (const [what, send, code] of cases) {
      const [, r] = await Raw.upgrade(port);
      await send(r);
      const err = await r.frame();
      assert.equal(err?.opcode, Opcode.text, what);
      assert.equal(JSON.parse(new TextDecoder().decode(err!.payload)).code, 400, what);
      const close = await r.frame();
      assert.equal(close?.opcode, Opcode.close, what);
      assert.equal((close!.payload[0] << 8) | close!.payload[1], code, what);
      await r.sendFrame(Opcode.close, close!.payload.subarray(0, 2)).catch(() => {});
      assert.equal(await r.frame(), null, `${what}: then the relay ends TCP`);
      r.close();
    }
    assert.equal(dropped(relay, "protocol"), 2);
    assert.equal(dropped(relay, "bad_utf8"), 1);
  });
});

// ---------------------------------------------------------------- mailboxes

Deno.test("relay server: mailboxes authenticate, DELIVER with the source id, NO_ROUTE", async () => {
  await withRelay({}, async (relay) => {
    const [ia, ib, ic] = [await identity(0), await identity(1), await identity(2)];
    const a = await mailbox(relay, ia);
    const b = await mailbox(relay, ib);
    const payload = crypto.getRandomValues(new Uint8Array(65_503));
    a.send(encodeSend(mailboxIdOf(ib.publicKeys), payload));
    const d = decodeDeliver(await b.binary());
    assert.deepEqual(d?.id, mailboxIdOf(ia.publicKeys));
    assert.deepEqual(d?.payload, payload);
    for (let i = 0; i < 100; i++) b.send(encodeSend(mailboxIdOf(ia.publicKeys), Uint8Array.of(i)));
    for (let i = 0; i < 100; i++) {
      assert.deepEqual(decodeDeliver(await a.binary())?.payload, Uint8Array.of(i));
    }

    a.send(encodeSend(mailboxIdOf(ic.publicKeys), Uint8Array.of(1)));
    assert.deepEqual(decodeNoRoute(await a.binary()), mailboxIdOf(ic.publicKeys));

    // A restarted daemon proves the same mailbox: the old connection gets 409 and goes.
    const a2 = await mailbox(relay, ia);
    await expectMailboxError(a, 409);
    b.send(encodeSend(mailboxIdOf(ia.publicKeys), Uint8Array.of(42)));
    assert.deepEqual(decodeDeliver(await a2.binary())?.payload, Uint8Array.of(42));
    assert.equal(metric(relay, "den_relay_mailboxes"), 2);
    await closeAll(a2, b);

    assert.equal(metric(relay, 'den_relay_frames_forwarded_total{kind="mailbox"}'), 102);
    assert.equal(
      metric(relay, 'den_relay_bytes_forwarded_total{kind="mailbox"}'),
      65_503 + 100 + 1,
    );
    assert.equal(dropped(relay, "no_route"), 1);
    assert.equal(dropped(relay, "replaced"), 1);
    assert.equal(metric(relay, 'den_relay_connections_total{kind="mailbox"}'), 3);
  });
});

Deno.test("relay server: mailbox AUTH failures and misuse", async () => {
  await withRelay({}, async (relay) => {
    const who = await identity(0);
    const open = async () => {
      const c = await Client.open(`${relay.url}/v1/mailbox`);
      return { c, nonce: decodeChallenge(await c.binary())! };
    };

    const bad = await open();
    bad.c.send(
      await signAuth(who.signing, who.publicKeys, crypto.getRandomValues(new Uint8Array(32))),
    );
    await expectMailboxError(bad.c, 403);

    const early = await open();
    early.c.send(encodeSend(mailboxIdOf(who.publicKeys), Uint8Array.of(1)));
    await expectMailboxError(early.c, 401);

    const text = await open();
    text.c.send("hello");
    await expectMailboxError(text.c, 400);

    const junk = await open();
    junk.c.send(Uint8Array.of(0x02, 1, 2, 3));
    await expectMailboxError(junk.c, 400);

    const big = await open();
    big.c.send(new Uint8Array(65_537));
    await expectMailboxError(big.c, 413);

    const twice = await open();
    const auth = await signAuth(who.signing, who.publicKeys, twice.nonce);
    twice.c.send(auth);
    assert.ok(decodeReady(await twice.c.binary()));
    twice.c.send(auth);
    await expectMailboxError(twice.c, 400);

    assert.equal(dropped(relay, "bad_signature"), 1);
    assert.equal(dropped(relay, "not_authenticated"), 1);
    assert.equal(dropped(relay, "text_in_mailbox"), 1);
    assert.equal(dropped(relay, "malformed"), 1);
    assert.equal(dropped(relay, "too_large"), 1);
    assert.equal(dropped(relay, "second_auth"), 1);
    assert.equal(metric(relay, "den_relay_mailboxes"), 0);
  });
});

Deno.test("relay server: mailbox flooding beyond the rate is ERROR 429", async () => {
  await withRelay({ mailboxRate: 10 }, async (relay) => {
    const a = await mailbox(relay, await identity(0));
    const frame = encodeSend(mailboxIdOf((await identity(1)).publicKeys), Uint8Array.of(1));
    for (let i = 0; i < 30; i++) a.send(frame);
    let e: ReturnType<typeof decodeError> = null;
    while (e === null) {
      const b = await a.binary();
      if (decodeNoRoute(b) === null) e = decodeError(b);
    }
    assert.equal(e.code, 429);
    assert.equal((await a.next()).kind, "close");
    assert.equal(dropped(relay, "rate_limit"), 1);
  });
});

// ---------------------------------------------------------------- lifecycle

Deno.test("relay server: close() says goodbye (1001) to every client; gauges follow", async () => {
  const relay = await RelayServer.start({
    hostname: "127.0.0.1",
    port: 0,
    log: new Logger("relay", { sink: () => {} }),
  });
  const [a, b] = await pair(relay.url, "BYEROOM12");
  const m = await mailbox(relay, await identity(0));
  assert.equal(metric(relay, 'den_relay_connections{kind="room"}'), 2);
  assert.equal(metric(relay, 'den_relay_connections{kind="mailbox"}'), 1);
  assert.equal(metric(relay, "den_relay_rooms"), 1);
  assert.ok(metric(relay, "process_resident_memory_bytes") > 0);
  await relay.close();
  for (const c of [a, b, m]) {
    let end = await c.next();
    while (end.kind === "text") end = await c.next(); // a PEER_LEFT as the other one goes
    assert.equal(end.kind, "close");
    assert.equal((end as { code: number }).code, 1001);
  }
  assert.equal(metric(relay, 'den_relay_connections{kind="room"}'), 0);
  assert.equal(metric(relay, "den_relay_rooms"), 0);
  await closeAll(a, b, m);
});
