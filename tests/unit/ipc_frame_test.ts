import assert from "node:assert/strict";
import { encodeFrame, FrameDecoder, FrameError } from "../../src/ipc/frame.ts";
import { parseRequest, parseResponse } from "../../src/ipc/protocol.ts";

Deno.test("ipc frame: round trip, split at every byte, several frames in one chunk", () => {
  const a = encodeFrame({ v: 1, id: 1, method: "status" });
  const b = encodeFrame({ v: 1, id: 2, method: "reload", params: { x: "é" } });
  const all = new Uint8Array([...a, ...b]);
  for (let cut = 0; cut <= all.length; cut++) {
    const d = new FrameDecoder();
    const got = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))];
    assert.deepEqual(got.map((m) => (m as { id: number }).id), [1, 2]);
    assert.equal(d.pending, 0);
  }
});

Deno.test("ipc frame: a truncated frame stays pending and yields nothing", () => {
  const f = encodeFrame({ v: 1, id: 1, method: "status" });
  const d = new FrameDecoder();
  assert.deepEqual(d.push(f.subarray(0, f.length - 1)), []);
  assert.equal(d.pending, f.length - 1);
});

Deno.test("ipc frame: an oversize length is refused before the body is buffered", () => {
  const d = new FrameDecoder(1024);
  assert.throws(() => d.push(new Uint8Array([0, 0, 4, 1])), FrameError);
  assert.throws(() => encodeFrame("x".repeat(2000), 1024), FrameError);
});

Deno.test("ipc frame: invalid UTF-8 and invalid JSON are errors", () => {
  assert.throws(() => new FrameDecoder().push(new Uint8Array([0, 0, 0, 1, 0xff])), /UTF-8/);
  assert.throws(() => new FrameDecoder().push(new Uint8Array([0, 0, 0, 1, 0x7b])), /JSON/);
});

Deno.test("ipc protocol: malformed requests are described, good ones parsed", () => {
  assert.equal(parseRequest([]), "request is not a JSON object");
  assert.match(parseRequest({ id: 1, method: "x" }) as string, /version/);
  assert.match(parseRequest({ v: 1, id: 1.5, method: "x" }) as string, /id/);
  assert.match(parseRequest({ v: 1, id: 1, method: "../etc" }) as string, /method/);
  assert.match(parseRequest({ v: 1, id: 1, method: "x", params: [1] }) as string, /params/);
  assert.deepEqual(parseRequest({ v: 1, id: 7, method: "status" }), {
    v: 1,
    id: 7,
    method: "status",
    params: {},
  });
  const err = parseResponse({
    v: 1,
    id: 7,
    ok: false,
    error: { code: "x", message: "m", exit: 3 },
  });
  assert.deepEqual(err, {
    v: 1,
    id: 7,
    ok: false,
    error: { code: "x", message: "m", hint: undefined, exit: 3 },
  });
  assert.match(parseResponse({ id: 1, ok: false }) as string, /neither/);
});
