/**
 * `den chat ROOM --relay URL` in line mode (piped stdin/stdout) between two real child processes,
 * through a real `den relay`, with everything on the wire recorded: what the relay can see.
 *
 *   den chat A ─┐
 *               ├─ TcpProxy ── den relay     (records each connection's two directions apart)
 *   den chat B ─┘
 *
 * Each connection's client→relay and relay→client bytes are decoded as WebSocket frames; the raw
 * bytes and the frames are searched for the plaintext. Checked: no message text anywhere the relay can see
 * (raw bytes, unmasked frames, base64-decoded fields), every message record padded to one of
 * three sizes so lengths leak only the bucket, only the expected frame kinds, the relay
 * forwarding SIGNALs verbatim, and neither client writing a file.
 */
import assert from "node:assert/strict";
import { startRelay, waitFor } from "../../scripts/lib/den_process.ts";
import { ChatChild } from "../support/chat_child.ts";
import { containsBytes, type ProxiedConn, TcpProxy } from "../../scripts/lib/tcp_proxy.ts";
import { FrameDecoder } from "../../relay/ws/frames.ts";
import { HELLO_BYTES, PAD_BUCKETS, SEALED_SIZES } from "../../src/chat/room_crypto.ts";
import { encodeSignal } from "../../src/chat/room_frames.ts";
import { MLKEM768_CIPHERTEXT_BYTES } from "../../src/crypto/kem.ts";
import { concatBytes } from "../../src/crypto/encoding.ts";

const WAIT = 15_000; // the longest any single wait may take
const enc = new TextEncoder();
const dec = new TextDecoder();

// ---------------------------------------------------------------- RFC 6455 decoding

interface WireMessage {
  opcode: number;
  payload: Uint8Array;
  /** For text messages. */
  text?: string;
  /** Bytes the message took on the wire: headers, masks and payloads of all its frames. */
  wireBytes: number;
}

/** Splits the HTTP head (through the blank line) from the frames after it. */
function splitHead(stream: Uint8Array): { head: string; rest: Uint8Array } {
  const end = stream.findIndex((_, i) =>
    stream[i] === 13 && stream[i + 1] === 10 && stream[i + 2] === 13 && stream[i + 3] === 10
  );
  assert.ok(end >= 0, "an HTTP head before the frames");
  return { head: dec.decode(stream.subarray(0, end)), rest: stream.subarray(end + 4) };
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Every frame of one direction: client frames must be masked and are unmasked, server frames must
 * not be. Fragments are joined into messages. Every byte must belong to a frame.
 */
function decodeFrames(bytes: Uint8Array, fromClient: boolean): WireMessage[] {
  const out: WireMessage[] = [];
  let off = 0;
  let frag: { opcode: number; parts: Uint8Array[]; wire: number } | null = null;
  while (off < bytes.length) {
    assert.ok(bytes.length - off >= 2, `a truncated frame header at ${off}`);
    const b0 = bytes[off], b1 = bytes[off + 1];
    assert.equal(b0 & 0x70, 0, "no RSV bits (no compression extension)");
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    assert.equal(masked, fromClient, fromClient ? "client frames masked" : "server frames not");
    let len = b1 & 0x7f;
    let at = off + 2;
    if (len === 126) {
      len = (bytes[at] << 8) | bytes[at + 1];
      at += 2;
    } else if (len === 127) {
      const big = new DataView(bytes.buffer, bytes.byteOffset + at, 8).getBigUint64(0);
      len = Number(big);
      at += 8;
    }
    let mask: Uint8Array | null = null;
    if (masked) {
      mask = bytes.subarray(at, at + 4);
      at += 4;
    }
    assert.ok(at + len <= bytes.length, `a truncated frame at ${off} (${len} bytes of payload)`);
    const payload = bytes.slice(at, at + len);
    if (mask) { for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3]; }
    const wire = at + len - off;
    off = at + len;
    if (opcode >= 0x8) {
      assert.ok(fin && opcode <= 0xa, `control frame opcode ${opcode}`);
      out.push({ opcode, payload, wireBytes: wire });
      continue;
    }
    if (opcode === 0) {
      assert.ok(frag, "a continuation without a first fragment");
      frag.parts.push(payload);
      frag.wire += wire;
    } else {
      assert.equal(frag, null, "a new message inside a fragmented one");
      assert.ok(opcode === 1 || opcode === 2, `data opcode ${opcode}`);
      frag = { opcode, parts: [payload], wire };
    }
    if (!fin) continue;
    const whole = concatBytes(...frag.parts);
    out.push({
      opcode: frag.opcode,
      payload: whole,
      text: frag.opcode === 1 ? strictUtf8.decode(whole) : undefined,
      wireBytes: frag.wire,
    });
    frag = null;
  }
  assert.equal(frag, null, "a fragmented message left unfinished");
  return out;
}

/** The relay's own decoder over the recorded client→relay chunks: the texts the relay handled. */
function relayDecoderTexts(chunks: Uint8Array[], headBytes: number): string[] {
  const d = new FrameDecoder(65_536);
  const texts: string[] = [];
  let skip = headBytes;
  for (const chunk of chunks) {
    const body = chunk.subarray(Math.min(skip, chunk.length));
    skip = Math.max(0, skip - chunk.length);
    if (body.length === 0) continue;
    d.push(body);
    for (let ev = d.next(); ev; ev = d.next()) {
      assert.notEqual(ev.type, "error", `the relay's decoder: ${JSON.stringify(ev)}`);
      if (ev.type === "text") texts.push(ev.text);
    }
  }
  return texts;
}

interface DecodedConn {
  upHead: string;
  downHead: string;
  up: WireMessage[];
  down: WireMessage[];
}

function decodeConn(c: ProxiedConn): DecodedConn {
  const upBytes = concatBytes(...c.up), downBytes = concatBytes(...c.down);
  const up = splitHead(upBytes), down = splitHead(downBytes);
  const decoded = {
    upHead: up.head,
    downHead: down.head,
    up: decodeFrames(up.rest, true),
    down: decodeFrames(down.rest, false),
  };
  // Cross-check the unmasking with the relay's own decoder.
  assert.deepEqual(
    relayDecoderTexts(c.up, upBytes.length - up.rest.length),
    decoded.up.filter((m) => m.text !== undefined).map((m) => m.text),
    "the relay's decoder reads the same texts",
  );
  return decoded;
}

// ---------------------------------------------------------------- JSON / base64 helpers

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function fromB64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
}

/** Every string inside a JSON value (keys too). */
function jsonStrings(v: unknown, out: string[] = []): string[] {
  if (typeof v === "string") out.push(v);
  else if (Array.isArray(v)) { for (const x of v) jsonStrings(x, out); }
  else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      out.push(k);
      jsonStrings(x, out);
    }
  }
  return out;
}

/** Each string in the frame that is base64, decoded. */
function base64Fields(text: string): Uint8Array[] {
  return jsonStrings(JSON.parse(text)).filter((s) => s.length >= 4 && BASE64.test(s)).map(
    fromB64,
  );
}

function counterOf(sealed: Uint8Array): bigint {
  return new DataView(sealed.buffer, sealed.byteOffset).getBigUint64(0, false);
}

// ---------------------------------------------------------------- messages

interface Message {
  label: string;
  text: string;
  /** The padded plaintext size it must be sealed in. */
  bucket: number;
  /** What must be found nowhere the relay can see (UTF-8). */
  needles: string[];
}

/** `tag` repeated to exactly `n` ASCII characters. */
function fill(tag: string, n: number): string {
  return `${tag}_`.repeat(Math.ceil(n / (tag.length + 1))).slice(0, n);
}

/** \uXXXX escapes of every UTF-16 unit (a JSON-escaped form of the text). */
function escaped(text: string): string {
  return [...Array(text.length).keys()].map((i) =>
    `\\u${text.charCodeAt(i).toString(16).padStart(4, "0")}`
  ).join("");
}

function messagesOf(side: "A" | "B"): Message[] {
  const tag = (what: string) => `qz${side}${what}Kx`;
  const oneChar = side === "A" ? "\u{1F99C}" : "\u{1F99A}"; // 🦜 / 🦚: 1 char, 4 bytes
  const emoji = side === "A"
    ? ["\u{1F419}", "\u{1F991}", "\u{1F980}", "\u{1F421}", "\u{1F420}"] // sea creatures
    : ["\u{1F335}", "\u{1F334}", "\u{1F344}", "\u{1F33B}", "\u{1F337}"]; // plants
  const emojiText = Array.from({ length: 1000 }, (_, i) => emoji[(i * 3 + (i >> 2)) % 5]).join("");
  const ascii = (label: string, n: number, bucket: number): Message => {
    const text = fill(tag(label), n);
    return { label, text, bucket, needles: [tag(label), text] };
  };
  return [
    { label: "1 char", text: oneChar, bucket: 256, needles: [oneChar, escaped(oneChar)] },
    ascii("100", 100, 256),
    ascii("252", 252, 256),
    ascii("253", 253, 256),
    ascii("600", 600, 1024),
    ascii("1000", 1000, 1024),
    {
      label: "1000 emoji",
      text: emojiText,
      bucket: 4096,
      needles: [
        emojiText.slice(0, 6),
        emojiText.slice(500, 506),
        emojiText,
        escaped(
          emojiText.slice(0, 4),
        ),
      ],
    },
  ];
}

/** The bucket a message of this many UTF-8 bytes goes in (3 bytes of record header). */
function expectedBucket(bytes: number): number {
  return PAD_BUCKETS.find((b) => b >= bytes + 3)!;
}

// ---------------------------------------------------------------- the test

Deno.test("den chat through a relay: line mode both ways, the relay sees only padded ciphertext, no files written", async () => {
  const fsRoot = await Deno.makeTempDir({ prefix: "den-chat-view-home-" });
  // The children's HOME, XDG dirs, TMPDIR and cwd are all this empty directory. Deno's own cache
  // stays where it is (it would otherwise move under the new HOME).
  const home = Deno.env.get("HOME") ?? "/root";
  const denoDir = Deno.env.get("DENO_DIR") ??
    `${Deno.env.get("XDG_CACHE_HOME") || `${home}/.cache`}/deno`;
  const env: Record<string, string> = {
    HOME: fsRoot,
    XDG_CONFIG_HOME: fsRoot,
    XDG_DATA_HOME: fsRoot,
    XDG_STATE_HOME: fsRoot,
    XDG_RUNTIME_DIR: fsRoot,
    XDG_CACHE_HOME: fsRoot,
    TMPDIR: fsRoot,
    DENO_DIR: denoDir,
  };

  const relay = await startRelay();
  const relayPort = Number(new URL(relay.url).port);
  const wire = TcpProxy.start({ hostname: "127.0.0.1", port: relayPort });
  const url = `ws://127.0.0.1:${wire.port}`;
  const room = `VIEW${crypto.getRandomValues(new Uint32Array(1))[0].toString(36).toUpperCase()}`
    .slice(0, 12).padEnd(8, "Z");
  const sent = { A: messagesOf("A"), B: messagesOf("B") };
  for (const m of [...sent.A, ...sent.B]) {
    assert.equal(m.bucket, expectedBucket(enc.encode(m.text).length), m.label);
  }
  assert.equal(enc.encode(sent.A[6].text).length, 4000);
  assert.equal(enc.encode(sent.A[2].text).length, 252);
  assert.equal(enc.encode(sent.A[3].text).length, 253);

  const children: ChatChild[] = [];
  try {
    // A joins first (its connection is the proxy's first), then B.
    const a = new ChatChild([room, "--relay", url], { name: "A", env, cwd: fsRoot });
    children.push(a);
    await a.waitLine(new RegExp(`^\\* waiting for someone to join room ${room}$`));
    await waitFor(
      "A's connection upgraded at the relay",
      () =>
        Promise.resolve(
          wire.conns.length === 1 &&
            containsBytes(concatBytes(...wire.conns[0].down), enc.encode(" 101 ")),
        ),
      WAIT,
    );
    const b = new ChatChild([room, "--relay", url], { name: "B", env, cwd: fsRoot });
    children.push(b);
    for (const c of [a, b]) await c.waitLine(/^\* end-to-end encrypted \(/);

    for (const m of sent.A) await a.writeLine(m.text);
    for (const m of sent.B) await b.writeLine(m.text);
    for (const [to, from] of [[b, sent.A], [a, sent.B]] as const) {
      for (const m of from) {
        const line = await to.waitLine(/^peer: /);
        assert.ok(
          line === `peer: ${m.text}`,
          `${to.name} got ${JSON.stringify(line.slice(0, 80))}… for the ${m.label} message`,
        );
      }
    }

    // A's stdin ends: it says goodbye and quits; B is told and ends too, its stdin still open.
    await a.closeStdin();
    const endA = await a.exited();
    assert.equal(endA.code, 0, a.describe());
    const endB = await b.exited();
    assert.equal(endB.code, 0, b.describe());
    assert.ok(
      endB.stdout.includes("* the other person ended the chat; session destroyed, keys wiped"),
      b.describe(),
    );
    assert.ok(endA.stdout.includes("* you ended the chat; session destroyed, keys wiped"));
    for (const r of [endA, endB]) assert.equal(r.stderr, "", "nothing on stderr");
    await b.closeStdin();

    // Both connections are over; the capture is complete.
    await waitFor(
      "both relay connections to close",
      () => Promise.resolve(wire.conns.length === 2 && wire.conns.every((c) => c.done)),
      WAIT,
    );
    const captured = wire.captured();

    // ---- (a) the plaintext is nowhere the relay can see
    const raws = [
      captured,
      ...wire.conns.flatMap((c) => [concatBytes(...c.up), concatBytes(...c.down)]),
    ];
    const conns = wire.conns.map(decodeConn);
    const allMessages = conns.flatMap((c) => [...c.up, ...c.down]);
    const payloads = allMessages.map((m) => m.payload);
    const binaryFields = allMessages.filter((m) => m.text !== undefined).flatMap((m) =>
      base64Fields(m.text!)
    );
    const texts = allMessages.map((m) => m.text ?? "");
    // Positive controls: the searches do find what the relay legitimately sees.
    assert.ok(
      containsBytes(captured, enc.encode("GET / HTTP/1.1")),
      "the capture holds the upgrade",
    );
    assert.ok(payloads.some((p) => containsBytes(p, enc.encode(room))), "unmasked JOIN found");
    assert.ok(texts.some((t) => t.includes(`"room":"${room}"`)), "JOIN text found");
    for (const m of [...sent.A, ...sent.B]) {
      for (const needle of m.needles) {
        const bytes = enc.encode(needle);
        const shown = `${m.label} ${JSON.stringify(needle.slice(0, 24))}`;
        for (const raw of raws) assert.ok(!containsBytes(raw, bytes), `raw capture has ${shown}`);
        for (const p of payloads) {
          assert.ok(!containsBytes(p, bytes), `a frame payload has ${shown}`);
        }
        for (const f of binaryFields) {
          assert.ok(!containsBytes(f, bytes), `a base64 field decodes to ${shown}`);
        }
        for (const t of texts) {
          assert.ok(!t.toLowerCase().includes(needle.toLowerCase()), `a frame text has ${shown}`);
        }
      }
    }

    // ---- (c) the only frames: upgrade, JOIN/SIGNAL up, PEER_FOUND/SIGNAL/PEER_LEFT down
    const FIELD: Record<string, string> = {
      DEN_COMMIT: "c",
      DEN_HELLO: "keys",
      DEN_KEM: "ct",
      DEN_MSG: "c",
    };
    const FIELD_BYTES: Record<string, number> = {
      DEN_COMMIT: 32,
      DEN_HELLO: HELLO_BYTES,
      DEN_KEM: MLKEM768_CIPHERTEXT_BYTES,
    };
    const kindsSeen = new Set<string>();
    const checkSignal = (m: WireMessage) => {
      const v = JSON.parse(m.text!);
      const field = FIELD[v.kind];
      assert.ok(field, `SIGNAL kind ${v.kind}`);
      kindsSeen.add(`SIGNAL ${v.kind}`);
      assert.deepEqual(Object.keys(v), ["type", "kind", field], `${v.kind} carries only ${field}`);
      assert.match(v[field], BASE64);
      const data = fromB64(v[field]);
      if (v.kind === "DEN_MSG") assert.ok(SEALED_SIZES.includes(data.length), `${data.length}`);
      else assert.equal(data.length, FIELD_BYTES[v.kind], v.kind);
      return { kind: v.kind as string, data, text: m.text!, wireBytes: m.wireBytes };
    };
    type Signal = ReturnType<typeof checkSignal>;
    const upSignals: Signal[][] = [], downSignals: Signal[][] = [];
    for (const c of conns) {
      assert.match(c.upHead, /^GET \/ HTTP\/1\.1\r\n/);
      assert.match(c.downHead, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
      assert.doesNotMatch(c.downHead, /sec-websocket-extensions/i, "no compression");
      for (const m of [...c.up, ...c.down]) {
        assert.ok(m.opcode !== 2, "no binary frames");
        if (m.opcode >= 0x8) kindsSeen.add(`control ${m.opcode}`);
      }
      const up = c.up.filter((m) => m.opcode === 1);
      const down = c.down.filter((m) => m.opcode === 1);
      assert.equal(up[0].text, JSON.stringify({ type: "JOIN", room }), "JOIN first");
      assert.equal(down[0].text, '{"type":"PEER_FOUND"}', "PEER_FOUND first");
      kindsSeen.add("JOIN").add("PEER_FOUND");
      for (const m of up.slice(1)) {
        assert.equal(JSON.parse(m.text!).type, "SIGNAL", `client sent ${m.text!.slice(0, 60)}`);
      }
      for (const m of down.slice(1)) {
        const type = JSON.parse(m.text!).type;
        if (type === "PEER_LEFT") {
          assert.equal(m.text, '{"type":"PEER_LEFT"}');
          kindsSeen.add(type);
        } else assert.equal(type, "SIGNAL", `relay sent ${m.text!.slice(0, 60)}`);
      }
      upSignals.push(up.slice(1).map(checkSignal));
      downSignals.push(
        down.slice(1).filter((m) => !m.text!.includes("PEER_LEFT")).map(checkSignal),
      );
      // Close frames only, as control frames (both sides close normally).
      for (const m of [...c.up, ...c.down].filter((m) => m.opcode >= 0x8)) {
        assert.equal(m.opcode, 0x8, `control frame ${m.opcode}`);
      }
    }
    for (const k of kindsSeen) {
      assert.ok(
        [
          "JOIN",
          "PEER_FOUND",
          "PEER_LEFT",
          "SIGNAL DEN_COMMIT",
          "SIGNAL DEN_HELLO",
          "SIGNAL DEN_KEM",
          "SIGNAL DEN_MSG",
          "control 8",
        ].includes(k),
        `the relay saw ${k}`,
      );
    }
    // The relay forwards each SIGNAL verbatim, in order, to the other client.
    assert.deepEqual(downSignals[1].map((s) => s.text), upSignals[0].map((s) => s.text));
    assert.deepEqual(downSignals[0].map((s) => s.text), upSignals[1].map((s) => s.text));

    // ---- (b) every DEN_MSG record is one of three sizes; lengths leak only the bucket
    const msgs = [...upSignals, ...downSignals].flat().filter((s) => s.kind === "DEN_MSG");
    const sizes = [...new Set(msgs.map((s) => s.data.length))].sort((x, y) => x - y);
    assert.deepEqual(sizes, [...SEALED_SIZES], "all three padded sizes on the wire");
    const textLengths = new Set(msgs.map((s) => s.text.length));
    assert.equal(textLengths.size, 3, `DEN_MSG frame text lengths: ${[...textLengths]}`);
    for (const s of msgs) {
      assert.equal(s.text.length, encodeSignal("DEN_MSG", new Uint8Array(s.data.length)).length);
    }
    const figures = new Map<number, { text: number; up: Set<number>; down: Set<number> }>();
    for (const [dir, list] of [["up", upSignals], ["down", downSignals]] as const) {
      for (const s of list.flat().filter((s) => s.kind === "DEN_MSG")) {
        const bucket = s.data.length - 24;
        const f = figures.get(bucket) ?? { text: s.text.length, up: new Set(), down: new Set() };
        f[dir].add(s.wireBytes);
        figures.set(bucket, f);
      }
    }
    for (const [bucket, f] of figures) {
      assert.equal(f.up.size, 1, `one client frame length for the ${bucket} bucket`);
      assert.equal(f.down.size, 1, `one relay frame length for the ${bucket} bucket`);
    }

    // Each client's records, by their counter: 0 the ready record, 1..7 the lines in order, then
    // the goodbye from A only (B was told, it had nothing to say).
    const perMessage: Record<string, number[]> = {};
    upSignals.forEach((list, i) => {
      const records = list.filter((s) => s.kind === "DEN_MSG");
      assert.deepEqual(
        records.map((s) => counterOf(s.data)),
        records.map((_, n) => BigInt(n)),
        "counters count up from 0",
      );
      const lines = i === 0 ? sent.A : sent.B;
      assert.equal(records.length, 1 + lines.length + (i === 0 ? 1 : 0), "ready, lines, bye");
      assert.equal(records[0].data.length, SEALED_SIZES[0], "the ready record");
      lines.forEach((m, n) => {
        const r = records[n + 1];
        assert.equal(r.data.length, m.bucket + 24, `the ${m.label} record's size`);
        (perMessage[m.label] ??= []).push(r.text.length, r.wireBytes);
      });
      if (i === 0) assert.equal(records.at(-1)!.data.length, SEALED_SIZES[0], "the bye record");
      assert.deepEqual(
        list.map((s) => s.kind),
        ["DEN_COMMIT", "DEN_HELLO", "DEN_KEM", ...records.map(() => "DEN_MSG")],
      );
    });

    // ---- (d) 1 character and 252 bytes (and 100 and 253) look the same on the wire
    for (const label of ["100", "252", "253"]) {
      assert.deepEqual(perMessage[label], perMessage["1 char"], `${label} vs 1 char`);
    }
    assert.deepEqual(perMessage["600"], perMessage["1000"], "600 vs 1000 characters");
    assert.notDeepEqual(perMessage["253"], perMessage["600"]);

    console.log(
      "DEN_MSG per bucket (text chars, client→relay frame bytes, relay→client frame bytes):",
      [...figures].sort(([x], [y]) => x - y).map(([b, f]) =>
        `${b}: ${f.text}, ${[...f.up]}, ${[...f.down]}`
      ).join("; "),
    );

    // ---- neither client wrote a file
    const left: string[] = [];
    for await (const e of Deno.readDir(fsRoot)) left.push(e.name);
    assert.deepEqual(left, [], `den chat wrote into its HOME / XDG dirs / cwd: ${left}`);
  } finally {
    await Promise.all(children.map((c) => c.kill()));
    await wire.close();
    await relay.stop();
    await Deno.remove(fsRoot, { recursive: true }).catch(() => {});
  }
});
