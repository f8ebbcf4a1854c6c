/**
 * `den relay` as a real child process, driven by an independent chat-room client
 * (tests/support/independent_room_client.ts) written from the published wire description only:
 * JOIN / PEER_FOUND / SIGNAL forwarded verbatim / PEER_LEFT / ERROR 400·409·413·429, ws and wss.
 */
import assert from "node:assert/strict";
import { denCommand, freePort, waitFor } from "../../scripts/lib/den_process.ts";
import { RoomClient } from "../support/independent_room_client.ts";

const MAX_FRAME = 65_536;

// ---------------------------------------------------------------- relay process

interface Relay {
  port: number;
  log: () => string;
  stop: () => Promise<Deno.CommandStatus>;
}

async function startRelay(
  extra: string[] = [],
  health: { scheme: "http" | "https"; host: string; client?: Deno.HttpClient } = {
    scheme: "http",
    host: "127.0.0.1",
  },
): Promise<Relay> {
  const port = freePort();
  const child = denCommand(["relay", "--listen", `127.0.0.1:${port}`, "--metrics", "off", ...extra])
    .spawn();
  let log = "";
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) log += dec.decode(chunk, { stream: true });
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => (exited = true, s));
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    const s = await status;
    await drained;
    return s;
  };
  try {
    await waitFor(`den relay on port ${port}`, async () => {
      if (exited) throw new Error(`den relay exited early:\n${log}`);
      try {
        const url = `${health.scheme}://${health.host}:${port}/healthz`;
        const r = await fetch(url, { client: health.client });
        await r.body?.cancel();
        return r.status === 200;
      } catch {
        return false;
      }
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, log: () => log, stop };
}

// ---------------------------------------------------------------- helpers

/** A fresh room code matching ^[A-Z0-9]{8,16}$ (12 chars), unique per call. */
function roomCode(prefix: string): string {
  const rnd = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => (b % 36).toString(36))
    .join("").toUpperCase();
  return (prefix + rnd).slice(0, 12);
}

function b64(n: number): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(n))));
}

async function nextText(c: RoomClient, what: string, timeoutMs = 3_000): Promise<string> {
  const m = await c.next(timeoutMs);
  assert.equal(m.kind, "text", `${what}: expected a text frame, got ${JSON.stringify(m)}`);
  return (m as { text: string }).text;
}

async function expectJson(c: RoomClient, expected: unknown, what: string): Promise<void> {
  const text = await nextText(c, what);
  assert.deepEqual(JSON.parse(text), expected, `${what}: got ${text}`);
}

/** The next message is `{"type":"ERROR","code":code,"message":"…"}`, then the connection closes. */
async function expectErrorAndClose(c: RoomClient, code: number, what: string): Promise<void> {
  const text = await nextText(c, what);
  const e = JSON.parse(text);
  assert.equal(e.type, "ERROR", `${what}: expected ERROR, got ${text}`);
  assert.equal(e.code, code, `${what}: wrong ERROR code in ${text}`);
  assert.equal(typeof e.message, "string", `${what}: ERROR without a message: ${text}`);
  assert.ok(e.message.length > 0, `${what}: empty ERROR message`);
  const end = await c.next(3_000);
  assert.equal(
    end.kind,
    "close",
    `${what}: expected the relay to close, got ${JSON.stringify(end)}`,
  );
}

/** Nothing more arrives for a moment (no echo to the sender, no stray frames). */
async function expectQuiet(c: RoomClient, what: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 150));
  if (c.pending > 0) assert.fail(`${what}: unexpected message ${JSON.stringify(await c.next(0))}`);
}

/** Opens clients for one test and always closes them afterwards. */
async function withClients(
  url: string,
  fn: (open: () => Promise<RoomClient>) => Promise<void>,
  caCerts?: string[],
): Promise<void> {
  const all: RoomClient[] = [];
  try {
    await fn(async () => {
      const c = await RoomClient.connect(url, { caCerts });
      all.push(c);
      return c;
    });
    for (const c of all) assert.deepEqual(c.violations, [], "RFC 6455 violations by the relay");
  } finally {
    await Promise.all(all.map((c) => c.close()));
  }
}

/** Two clients joined to `room`, both having seen PEER_FOUND. */
async function pair(
  open: () => Promise<RoomClient>,
  room: string,
): Promise<[RoomClient, RoomClient]> {
  const a = await open();
  const b = await open();
  await a.join(room);
  await b.join(room);
  await expectJson(a, { type: "PEER_FOUND" }, "first joiner");
  await expectJson(b, { type: "PEER_FOUND" }, "second joiner");
  return [a, b];
}

/** One SIGNAL each way, checked byte for byte. */
async function talk(a: RoomClient, b: RoomClient, what: string): Promise<void> {
  const ab = await a.signal({ kind: "MSG", payload: b64(24) });
  assert.equal(await nextText(b, `${what} a→b`), ab, `${what}: a→b not forwarded verbatim`);
  const ba = await b.signal({ kind: "MSG", payload: b64(24) });
  assert.equal(await nextText(a, `${what} b→a`), ba, `${what}: b→a not forwarded verbatim`);
}

/** The room flow every client relies on; shared by the ws and wss tests. */
async function roomFlow(open: () => Promise<RoomClient>, room: string): Promise<void> {
  const [a, b] = await pair(open, room);

  const kx = await a.signal({ kind: "KEY_EXCHANGE", key: b64(32) });
  assert.equal(await nextText(b, "KEY_EXCHANGE"), kx, "KEY_EXCHANGE must arrive byte-identical");

  const msg = await b.signal({ kind: "MSG", payload: b64(100) });
  assert.equal(await nextText(a, "MSG"), msg, "MSG must arrive byte-identical");

  const hello = `{"type":"SIGNAL","kind":"DEN_HELLO","x":[1,2]}`;
  await a.sendText(hello);
  assert.equal(await nextText(b, "DEN_HELLO"), hello, "den's own kinds pass through verbatim");

  // Verbatim means the bytes, not a re-serialisation: spacing, key order, escapes survive.
  const odd = `{ "kind" : "MSG",\n "payload":"aGk=", "type":"SIGNAL", "n":"caf\\u00e9 ☕" }`;
  await b.sendText(odd);
  assert.equal(await nextText(a, "odd spacing"), odd, "SIGNAL text must not be re-serialised");

  await expectQuiet(a, "sender A");
  await expectQuiet(b, "sender B");
}

// ---------------------------------------------------------------- ws://

Deno.test("relay rooms over ws:// (independent client)", async (t) => {
  const relay = await startRelay();
  const url = `ws://127.0.0.1:${relay.port}/`;
  const ws = (fn: (open: () => Promise<RoomClient>) => Promise<void>) => withClients(url, fn);
  try {
    await t.step(
      "JOIN, PEER_FOUND, SIGNALs forwarded byte-identical both ways",
      () => ws((open) => roomFlow(open, roomCode("FLOW"))),
    );

    await t.step(
      "a third joiner gets ERROR 409 and is closed; the pair keeps talking",
      () =>
        ws(async (open) => {
          const room = roomCode("FULL");
          const [a, b] = await pair(open, room);
          const c = await open();
          await c.join(room);
          await expectErrorAndClose(c, 409, "third joiner");
          await talk(a, b, "after 409");
          await expectQuiet(a, "A after the third joiner");
        }),
    );

    await t.step(
      "PEER_LEFT on close and on a dropped socket; the seat can be taken again",
      () =>
        ws(async (open) => {
          const room = roomCode("LEFT");
          const [a, b] = await pair(open, room);
          await b.close();
          await expectJson(a, { type: "PEER_LEFT" }, "A after B closed");

          const c = await open();
          await c.join(room);
          await expectJson(a, { type: "PEER_FOUND" }, "A when C joined");
          await expectJson(c, { type: "PEER_FOUND" }, "C joining A");
          await talk(a, c, "A and C");

          await c.drop(); // no close frame: a crash or a lost network
          await expectJson(a, { type: "PEER_LEFT" }, "A after C dropped");
        }),
    );

    await t.step(
      "frames over 65,536 bytes get ERROR 413 and close; 65,536 passes",
      () =>
        ws(async (open) => {
          const [c, d] = await pair(open, roomCode("OTHER"));
          const [a, b] = await pair(open, roomCode("BIG"));

          const head = `{"type":"SIGNAL","kind":"MSG","payload":"`;
          const exact = head + "A".repeat(MAX_FRAME - head.length - 2) + `"}`;
          assert.equal(exact.length, MAX_FRAME);
          await a.sendText(exact);
          assert.equal(await nextText(b, "65,536-byte SIGNAL"), exact, "a 65,536-byte frame is ok");

          await a.sendText(head + "A".repeat(70_000 - head.length - 2) + `"}`);
          await expectErrorAndClose(a, 413, "70,000-byte frame");
          await expectJson(b, { type: "PEER_LEFT" }, "B after A was closed for 413");

          const lone = await open();
          await lone.sendText(head + "A".repeat(MAX_FRAME + 1 - head.length - 2) + `"}`);
          await expectErrorAndClose(lone, 413, "65,537-byte frame before JOIN");

          await talk(c, d, "other room after 413");
        }),
    );

    await t.step("malformed input gets ERROR 400 and close", () =>
      ws(async (open) => {
        const cases: [string, (c: RoomClient) => Promise<unknown>][] = [
          ["invalid JSON", (c) => c.sendText(`{"type":"JOIN","room":`)],
          ["JSON that is not an object", (c) => c.sendText(`["JOIN"]`)],
          ["unknown type", (c) => c.sendText(`{"type":"HELLO","room":"ABCDEFGH"}`)],
          ["JOIN without room", (c) => c.sendText(`{"type":"JOIN"}`)],
          ["lowercase room", (c) => c.join("abcdefgh")],
          ["room too short (7)", (c) => c.join("ABC1234")],
          ["room too long (17)", (c) => c.join("A".repeat(17))],
          ["room with a dash", (c) => c.join("ABCD-1234")],
          ["binary frame", (c) => c.sendFrame(0x2, new TextEncoder().encode(`{"type":"JOIN"}`))],
        ];
        for (const [what, send] of cases) {
          const c = await open();
          await send(c);
          await expectErrorAndClose(c, 400, what);
        }
        // The edges of ^[A-Z0-9]{8,16}$ are valid rooms.
        for (
          const room of [
            roomCode("EDGE").slice(0, 8),
            (roomCode("EDGE") + roomCode("X")).slice(0, 16),
          ]
        ) {
          const [a, b] = await pair(open, room);
          await talk(a, b, `room ${room}`);
        }
      }));

    await t.step(
      "500 SIGNALs as fast as possible get ERROR 429 and close; others unaffected",
      () =>
        ws(async (open) => {
          const [c, d] = await pair(open, roomCode("CALM"));
          const [a, b] = await pair(open, roomCode("FLOOD"));
          const sent: string[] = [];
          const writes: Promise<unknown>[] = [];
          for (let i = 0; i < 500; i++) {
            const text = JSON.stringify({ type: "SIGNAL", kind: "MSG", payload: btoa(`#${i}`) });
            sent.push(text);
            writes.push(a.sendText(text)); // not awaited one by one: as fast as the socket takes them
          }
          await Promise.allSettled(writes); // later writes may fail once the relay hangs up
          await expectErrorAndClose(a, 429, "flooding client");

          // B saw an in-order prefix of the flood, then PEER_LEFT.
          let forwarded = 0;
          for (;;) {
            const text = await nextText(b, `B after ${forwarded} forwarded`);
            if (text === sent[forwarded]) {
              forwarded++;
              continue;
            }
            assert.deepEqual(
              JSON.parse(text),
              { type: "PEER_LEFT" },
              `B got ${text.slice(0, 200)}`,
            );
            break;
          }
          assert.ok(forwarded < 500, "the rate limit cut the flood short");

          await talk(c, d, "other room after 429");
        }),
    );
  } finally {
    const status = await relay.stop();
    if (!status.success) console.warn(`den relay ended with ${JSON.stringify(status)}`);
  }
});

// ---------------------------------------------------------------- wss://

function haveOpenssl(): boolean {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const OPENSSL = haveOpenssl();
if (!OPENSSL) console.warn("relay_rooms_test: openssl not found, skipping the wss:// test");

Deno.test({
  name: "relay rooms over wss:// with a self-signed certificate (independent client)",
  ignore: !OPENSSL,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "den-relay-tls-" });
    let http: Deno.HttpClient | undefined;
    try {
      const gen = await new Deno.Command("openssl", {
        args: [
          ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
          ...["-days", "1", "-subj", "/CN=localhost"],
          ...["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
          ...["-addext", "basicConstraints=critical,CA:FALSE"],
          ...["-keyout", `${dir}/key.pem`, "-out", `${dir}/cert.pem`],
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(gen.success, new TextDecoder().decode(gen.stderr));
      const pem = await Deno.readTextFile(`${dir}/cert.pem`);
      http = Deno.createHttpClient({ caCerts: [pem] });

      const relay = await startRelay(
        ["--tls-cert", `${dir}/cert.pem`, "--tls-key", `${dir}/key.pem`],
        { scheme: "https", host: "localhost", client: http },
      );
      try {
        await withClients(
          `wss://localhost:${relay.port}/`,
          (open) => roomFlow(open, roomCode("TLS")),
          [pem],
        );
        // Without trusting the certificate the handshake must fail.
        await assert.rejects(RoomClient.connect(`wss://localhost:${relay.port}/`));
      } finally {
        const status = await relay.stop();
        if (!status.success) console.warn(`den relay (tls) ended with ${JSON.stringify(status)}`);
      }
    } finally {
      http?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
