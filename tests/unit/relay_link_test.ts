/** Relay link codec (src/wire/relay_link.ts): framing of session bytes inside mailbox payloads. */
import assert from "node:assert/strict";
import {
  decodeLinkMessage,
  encodeLinkClose,
  encodeLinkData,
  FrameAssembler,
  LINK_ID_BYTES,
  maxLinkChunk,
  splitFrame,
} from "../../src/wire/relay_link.ts";
import { MAX_MAILBOX_PAYLOAD } from "../../src/wire/relay_mailbox.ts";
import { FrameTooLarge } from "../../src/transport/link.ts";

const id = Uint8Array.from({ length: LINK_ID_BYTES }, (_, i) => i + 1);

Deno.test("relay link: data and close round-trip; a full chunk fits one mailbox payload", () => {
  const chunk = new Uint8Array(maxLinkChunk(MAX_MAILBOX_PAYLOAD)).fill(7);
  const data = encodeLinkData(id, true, chunk);
  assert.equal(data.length, MAX_MAILBOX_PAYLOAD);
  assert.deepEqual(decodeLinkMessage(data), { kind: "data", id, more: true, chunk });
  assert.deepEqual(decodeLinkMessage(encodeLinkData(id, false, new Uint8Array(0))), {
    kind: "data",
    id,
    more: false,
    chunk: new Uint8Array(0),
  });
  assert.deepEqual(decodeLinkMessage(encodeLinkClose(id)), { kind: "close", id });
});

Deno.test("relay link: malformed messages decode to null", () => {
  const data = encodeLinkData(id, false, new Uint8Array([1, 2, 3]));
  for (let cut = 0; cut < 1 + LINK_ID_BYTES + 1; cut++) {
    assert.equal(decodeLinkMessage(data.subarray(0, cut)), null, `cut at ${cut}`);
  }
  const badFlags = data.slice();
  badFlags[1 + LINK_ID_BYTES] = 0x02;
  assert.equal(decodeLinkMessage(badFlags), null);
  const unknown = data.slice();
  unknown[0] = 0x03;
  assert.equal(decodeLinkMessage(unknown), null);
  assert.equal(decodeLinkMessage(new Uint8Array([...encodeLinkClose(id), 0])), null);
});

Deno.test("relay link: frames split into chunks and join back whole", () => {
  for (const size of [0, 1, 999, 1000, 1001, 5000]) {
    const frame = Uint8Array.from({ length: size }, (_, i) => i * 7);
    const parts = splitFrame(frame, 1000);
    assert.equal(parts.length, Math.max(1, Math.ceil(size / 1000)));
    assert.ok(parts.every((p, i) => p.more === (i < parts.length - 1)));
    const asm = new FrameAssembler();
    let out: Uint8Array | null = null;
    for (const p of parts) out = asm.push(p.more, p.chunk, 10_000);
    assert.deepEqual(out, frame, `size ${size}`);
  }
});

Deno.test("relay link: the assembler refuses to hold more than the limit of one frame", () => {
  const asm = new FrameAssembler();
  assert.equal(asm.push(true, new Uint8Array(600), 1000), null);
  assert.throws(() => asm.push(true, new Uint8Array(600), 1000), FrameTooLarge);
});
