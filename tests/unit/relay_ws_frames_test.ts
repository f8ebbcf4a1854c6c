/** RFC 6455 frame decoding and encoding for the relay (relay/ws/frames.ts, out_buffer.ts). */
import assert from "node:assert/strict";
import {
  closePayload,
  encodeFrame,
  FrameDecoder,
  frameHeaderLength,
  Opcode,
  type WsEvent,
} from "../../relay/ws/frames.ts";
import { OutBuffer } from "../../relay/ws/out_buffer.ts";

const MAX = 65536;
const MASK = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);
const enc = new TextEncoder();

/** A masked client frame. */
function client(opcode: number, payload: Uint8Array | string, fin = true): Uint8Array {
  const bytes = typeof payload === "string" ? enc.encode(payload) : payload;
  return encodeFrame(opcode, bytes, { mask: MASK, fin });
}

function drain(d: FrameDecoder): WsEvent[] {
  const out: WsEvent[] = [];
  for (let ev = d.next(); ev !== null; ev = d.next()) {
    // Copy data views: they are only valid until the next push.
    out.push("data" in ev ? { ...ev, data: ev.data.slice() } as WsEvent : ev);
  }
  return out;
}

function decodeAll(...frames: Uint8Array[]): WsEvent[] {
  const d = new FrameDecoder(MAX);
  for (const f of frames) d.push(f);
  return drain(d);
}

function errorOf(events: WsEvent[]): { closeCode: number; message: string } {
  const last = events.at(-1);
  assert.ok(last && last.type === "error", `expected an error, got ${JSON.stringify(last)}`);
  return last;
}

Deno.test("frames: masked text and binary messages decode", () => {
  const bin = crypto.getRandomValues(new Uint8Array(300));
  const [t, b] = decodeAll(client(Opcode.text, "héllo ☕"), client(Opcode.binary, bin));
  assert.deepEqual(t.type === "text" && t.text, "héllo ☕");
  assert.ok(b.type === "binary");
  assert.deepEqual(b.data, bin);
});

Deno.test("frames: unmasking is right for every length and alignment", () => {
  for (let len = 0; len < 40; len++) {
    for (let lead = 0; lead < 4; lead++) {
      const payload = crypto.getRandomValues(new Uint8Array(len));
      // A leading frame of `lead` bytes of payload shifts the next payload's alignment.
      const d = new FrameDecoder(MAX);
      d.push(client(Opcode.binary, new Uint8Array(lead)));
      d.push(client(Opcode.binary, payload));
      const evs = drain(d);
      assert.equal(evs.length, 2);
      assert.ok(evs[1].type === "binary");
      assert.deepEqual(evs[1].data, payload, `len ${len} lead ${lead}`);
    }
  }
  const big = crypto.getRandomValues(new Uint8Array(MAX));
  const [ev] = decodeAll(client(Opcode.binary, big));
  assert.ok(ev.type === "binary");
  assert.deepEqual(ev.data, big);
});

Deno.test("frames: input fed one byte at a time yields the same events", () => {
  const frames = [
    client(Opcode.text, "a".repeat(200)),
    client(Opcode.ping, "p"),
    client(Opcode.binary, new Uint8Array(10_000)),
    client(Opcode.close, closePayload(1000, "bye")),
  ];
  const whole = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let off = 0;
  for (const f of frames) whole.set(f, (off += f.length) - f.length);
  const d = new FrameDecoder(MAX);
  const events: WsEvent[] = [];
  for (const byte of whole) {
    d.push(Uint8Array.of(byte));
    events.push(...drain(d));
  }
  assert.deepEqual(events.map((e) => e.type), ["text", "ping", "binary", "close"]);
  assert.deepEqual(events[3], { type: "close", code: 1000, reason: "bye" });
});

Deno.test("frames: reads through space()/commit() grow the buffer for a large frame", () => {
  const frame = client(Opcode.binary, crypto.getRandomValues(new Uint8Array(MAX)));
  const d = new FrameDecoder(MAX);
  let off = 0;
  let got: WsEvent | null = null;
  while (got === null) {
    const space = d.space();
    assert.ok(space.length > 0, "the buffer always has room for the pending frame");
    const n = Math.min(space.length, frame.length - off, 5000);
    space.set(frame.subarray(off, off + n));
    d.commit(n);
    off += n;
    got = d.next();
  }
  assert.equal(off, frame.length);
  assert.ok(got.type === "binary" && got.data.length === MAX);
});

Deno.test("frames: fragmented messages are reassembled, control frames in between", () => {
  const text = "fragments: é and ☕";
  const bytes = enc.encode(text);
  // Split inside a multi-byte character: UTF-8 is checked on the whole message.
  const cut = bytes.indexOf(0xc3) + 1;
  const evs = decodeAll(
    client(Opcode.text, bytes.subarray(0, cut), false),
    client(Opcode.ping, "x"),
    client(Opcode.continuation, bytes.subarray(cut, cut + 3), false),
    client(Opcode.pong, ""),
    client(Opcode.continuation, bytes.subarray(cut + 3), true),
  );
  assert.deepEqual(evs.map((e) => e.type), ["ping", "pong", "text"]);
  assert.equal(evs[2].type === "text" && evs[2].text, text);
});

Deno.test("frames: ping carries its payload; close codes and reasons", () => {
  const [ping] = decodeAll(client(Opcode.ping, "abc"));
  assert.ok(ping.type === "ping");
  assert.equal(new TextDecoder().decode(ping.data), "abc");
  assert.deepEqual(decodeAll(client(Opcode.close, new Uint8Array(0))), [
    { type: "close", code: null, reason: "" },
  ]);
  assert.deepEqual(decodeAll(client(Opcode.close, closePayload(4001, "custom"))), [
    { type: "close", code: 4001, reason: "custom" },
  ]);
  assert.equal(errorOf(decodeAll(client(Opcode.close, Uint8Array.of(3)))).closeCode, 1002);
  for (const code of [999, 1004, 1005, 1006, 1015, 2000, 5000]) {
    const evs = decodeAll(client(Opcode.close, closePayload(code, "")));
    assert.equal(errorOf(evs).closeCode, 1002, `close code ${code}`);
  }
  const badReason = Uint8Array.of(0x03, 0xe8, 0xff);
  assert.equal(errorOf(decodeAll(client(Opcode.close, badReason))).closeCode, 1007);
});

Deno.test("frames: an oversize length is refused from the header, before any payload", () => {
  // 16-bit length 65,535 is fine; 64-bit length 65,537 is not, with no payload sent at all.
  const header = Uint8Array.of(0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 1, ...MASK);
  const d = new FrameDecoder(MAX);
  d.push(header);
  const ev = d.next();
  assert.ok(ev?.type === "error");
  assert.equal(ev.closeCode, 1009);
  // The high 32 bits set: also too large, not a wrapped-around small number.
  const huge = Uint8Array.of(0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 5, ...MASK);
  assert.equal(errorOf(decodeAll(huge)).closeCode, 1009);
  // A fragmented message is capped as a whole, at the header of the fragment that passes it.
  const half = new Uint8Array(40_000);
  const cont = encodeFrame(Opcode.continuation, half, { mask: MASK });
  const evs = decodeAll(client(Opcode.binary, half, false), cont.subarray(0, 8));
  assert.equal(errorOf(evs).closeCode, 1009);
  // Exactly the cap passes.
  const [ok] = decodeAll(
    client(Opcode.binary, half, false),
    client(0, half.subarray(0, MAX - 40_000)),
  );
  assert.ok(ok.type === "binary" && ok.data.length === MAX);
});

Deno.test("frames: protocol violations close with 1002, bad UTF-8 with 1007", () => {
  const rsv = client(Opcode.text, "x");
  rsv[0] |= 0x40;
  const unmasked = encodeFrame(Opcode.text, enc.encode("x"));
  const longPing = client(Opcode.ping, new Uint8Array(126));
  const fragPing = client(Opcode.ping, "x", false);
  const cases: [string, Uint8Array[], number][] = [
    ["reserved bit", [rsv], 1002],
    ["reserved data opcode", [client(0x3, "x")], 1002],
    ["reserved control opcode", [client(0xb, "x")], 1002],
    ["unmasked client frame", [unmasked], 1002],
    ["control frame over 125 bytes", [longPing], 1002],
    ["fragmented control frame", [fragPing], 1002],
    ["continuation with no message", [client(Opcode.continuation, "x")], 1002],
    ["message inside a fragmented one", [
      client(Opcode.text, "a", false),
      client(Opcode.text, "b"),
    ], 1002],
    ["invalid UTF-8", [client(Opcode.text, Uint8Array.of(0x61, 0xc3, 0x28))], 1007],
    ["UTF-16 surrogate", [client(Opcode.text, Uint8Array.of(0xed, 0xa0, 0x80))], 1007],
  ];
  for (const [what, frames, code] of cases) {
    assert.equal(errorOf(decodeAll(...frames)).closeCode, code, what);
  }
});

Deno.test("frames: after an error the decoder yields nothing and discards input", () => {
  const d = new FrameDecoder(MAX);
  d.push(client(0x3, "x"));
  d.push(client(Opcode.text, "after"));
  assert.equal(d.next()?.type, "error");
  assert.equal(d.next(), null);
  for (let i = 0; i < 100; i++) d.push(new Uint8Array(10_000)); // never fills up
  assert.equal(d.next(), null);
});

Deno.test("frames: server frames are unmasked with minimal length encodings", () => {
  for (const [len, header] of [[0, 2], [125, 2], [126, 4], [65535, 4], [65536, 10]]) {
    const f = encodeFrame(Opcode.binary, new Uint8Array(len));
    assert.equal(frameHeaderLength(len), header);
    assert.equal(f.length, header + len);
    assert.equal(f[0], 0x82);
    assert.equal(f[1] & 0x80, 0, "server frames are not masked");
  }
  assert.deepEqual(encodeFrame(Opcode.text, enc.encode("hi")), Uint8Array.of(0x81, 2, 0x68, 0x69));
  const long = encodeFrame(Opcode.binary, new Uint8Array(65536));
  assert.deepEqual(long.subarray(0, 10), Uint8Array.of(0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0));
});

Deno.test("frames: close reasons are cut to fit 125 bytes without splitting a character", () => {
  const p = closePayload(1008, "é".repeat(100));
  assert.ok(p.length <= 125);
  assert.equal((p[0] << 8) | p[1], 1008);
  assert.equal(new TextDecoder("utf-8", { fatal: true }).decode(p.subarray(2)), "é".repeat(61));
});

Deno.test("out buffer: frames queued together come out as one write, in order", () => {
  const out = new OutBuffer();
  out.append(Opcode.text, [enc.encode("ab")]);
  out.append(Opcode.binary, [Uint8Array.of(1), new Uint8Array(200), Uint8Array.of(2)]);
  assert.equal(out.length, 4 + 4 + 202);
  const chunk = out.take();
  assert.equal(out.length, 0);
  assert.deepEqual(chunk.subarray(0, 4), Uint8Array.of(0x81, 2, 0x61, 0x62));
  assert.deepEqual(chunk.subarray(4, 8), Uint8Array.of(0x82, 126, 0, 202));
  assert.equal(chunk[8], 1);
  assert.equal(chunk.at(-1), 2);
  // Appends after take() do not touch the taken bytes, even once it is recycled.
  out.append(Opcode.text, [enc.encode("zz")]);
  const copy = chunk.slice();
  out.recycle(chunk);
  out.append(Opcode.text, [enc.encode("yy")]);
  assert.deepEqual(chunk, copy);
  assert.deepEqual(out.take(), Uint8Array.of(0x81, 2, 0x7a, 0x7a, 0x81, 2, 0x79, 0x79));
  out.append(Opcode.text, [enc.encode("q")]);
  out.clear();
  assert.equal(out.take().length, 0);
});
