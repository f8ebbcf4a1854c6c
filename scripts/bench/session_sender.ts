/** Worker for session.ts: connects and sends `total` bytes, raw or through a den session. */
import { generateIdentity } from "../../src/identity/keys.ts";
import { runInitiator } from "../../src/peer/session_conn.ts";
import { MAX_RECORD_PAYLOAD } from "../../src/session/record.ts";
import { FramedConn } from "../../src/transport/framed.ts";

interface Job {
  mode: "raw" | "session";
  port: number;
  total: number;
}

// A module Worker's global scope; typed by hand because the file is checked with the main lib.
const scope = globalThis as unknown as {
  onmessage: (ev: MessageEvent<Job>) => void;
  postMessage(msg: unknown): void;
};

scope.onmessage = async (ev: MessageEvent<Job>) => {
  const { mode, port, total } = ev.data;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const chunk = crypto.getRandomValues(new Uint8Array(MAX_RECORD_PAYLOAD));
  if (mode === "raw") {
    for (let sent = 0; sent < total;) {
      const n = Math.min(chunk.length, total - sent);
      let off = 0;
      while (off < n) off += await conn.write(chunk.subarray(off, n));
      sent += n;
    }
  } else {
    const framed = new FramedConn(conn);
    const est = await runInitiator(framed, {
      identity: await generateIdentity("sender"),
      teams: [],
      now: Date.now,
    }, 10_000);
    // As SessionConn does: seal the next record while earlier ones are still being written.
    let inFlight: Promise<void> = Promise.resolve();
    for (let sent = 0, k = 0; sent < total; k++) {
      const n = Math.min(chunk.length, total - sent);
      const record = est.sender.seal(16, chunk.subarray(0, n), Date.now());
      inFlight = inFlight.then(() => framed.write(record));
      if (k % 8 === 7) await inFlight;
      sent += n;
    }
    await inFlight;
  }
  // Wait for the receiver to close, so the sender's time covers delivery.
  await conn.read(new Uint8Array(1)).catch(() => null);
  conn.close();
  scope.postMessage("done");
};
