/** FramedConn over a real loopback TCP connection. */
import assert from "node:assert/strict";
import { FramedConn, FrameTooLarge } from "../../src/transport/framed.ts";

async function pair(): Promise<[Deno.TcpConn, Deno.TcpConn, () => void]> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [a, b] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port }),
    l.accept(),
  ]);
  return [a, b, () => l.close()];
}

Deno.test("framed: frames of every size arrive whole and in order", async () => {
  const [a, b, done] = await pair();
  const fa = new FramedConn(a), fb = new FramedConn(b);
  const sizes = [0, 1, 3, 4, 5, 1000, 65535, 300_000];
  const sent = sizes.map((n) => crypto.getRandomValues(new Uint8Array(Math.min(n, 65536))));
  sent[7] = new Uint8Array(300_000).fill(7);
  const writing = (async () => {
    for (const f of sent) await fa.write(f);
    fa.close();
  })();
  for (const f of sent) assert.deepEqual(await fb.read(400_000), f);
  assert.equal(await fb.read(400_000), null, "clean end of stream");
  await writing;
  fb.close();
  done();
});

Deno.test("framed: an announced length over the limit is refused before allocation", async () => {
  const [a, b, done] = await pair();
  await a.write(new Uint8Array([0x7f, 0xff, 0xff, 0xff]));
  const fb = new FramedConn(b);
  await assert.rejects(fb.read(1024), FrameTooLarge);
  a.close();
  fb.close();
  done();
});

Deno.test("framed: a stream cut mid-frame is an error, not a short frame", async () => {
  const [a, b, done] = await pair();
  await a.write(new Uint8Array([0, 0, 0, 10, 1, 2, 3]));
  a.close();
  const fb = new FramedConn(b);
  await assert.rejects(fb.read(1024), Deno.errors.UnexpectedEof);
  fb.close();
  done();
});
