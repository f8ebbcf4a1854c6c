import assert from "node:assert/strict";
import { fromHex } from "../../src/crypto/encoding.ts";
import { encodeFrame, FrameDecoder } from "../../src/ipc/frame.ts";
import { parseRequest, parseResponse } from "../../src/ipc/protocol.ts";

const doc = await Deno.readTextFile(new URL("../../docs/IPC.md", import.meta.url));
const vectors = [...doc.matchAll(/```\n([0-9a-f]+)\n```/g)].map((m) => fromHex(m[1]));

Deno.test("docs/IPC.md vectors: request and error response decode and re-encode exactly", () => {
  assert.equal(vectors.length, 2);
  const [req, res] = vectors.map((v) => {
    const msgs = new FrameDecoder().push(v);
    assert.equal(msgs.length, 1);
    assert.deepEqual(encodeFrame(msgs[0]), v, "re-encoding gives the documented bytes");
    return msgs[0];
  });
  assert.deepEqual(parseRequest(req), { v: 1, id: 1, method: "status", params: {} });
  const parsed = parseResponse(res);
  assert.ok(typeof parsed !== "string" && !parsed.ok);
  assert.equal(parsed.error.code, "ipc_version");
});

Deno.test("docs/IPC.md vectors: the truncated request yields nothing", () => {
  const d = new FrameDecoder();
  assert.deepEqual(d.push(vectors[0].subarray(0, vectors[0].length - 1)), []);
});
