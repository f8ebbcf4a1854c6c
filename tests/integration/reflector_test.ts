/**
 * The relay's UDP reflector (docs/NAT.md) in a real `den relay` process on loopback: it answers
 * on both ports with the client's own address, drops malformed and over-rate requests (counted in
 * /metrics), tells its ports in the mailbox challenge and the `den-reflector` header, and
 * `den doctor` with that relay configured reports the NAT ("open" on loopback).
 */
import assert from "node:assert/strict";
import { den, denCommand, freePort, initNode, waitFor } from "../../scripts/lib/den_process.ts";
import {
  decodeResponse,
  encodeRequest,
  REFLECTOR_HEADER,
  TXID_BYTES,
} from "../../src/wire/reflector.ts";
import { challengeReflector, decodeChallenge } from "../../src/wire/relay_mailbox.ts";

/** A port P with UDP P and P+1 free on loopback. */
function freePair(): number {
  for (;;) {
    const p = freePort();
    try {
      Deno.listenDatagram({ hostname: "127.0.0.1", port: p + 1, transport: "udp" }).close();
      return p;
    } catch { /* taken: another */ }
  }
}

async function startRelay(extra: string[]) {
  const port = freePort();
  const metrics = freePort();
  const child = denCommand([
    "relay",
    "--listen",
    `127.0.0.1:${port}`,
    "--metrics",
    `127.0.0.1:${metrics}`,
    ...extra,
  ]).spawn();
  child.stdout.cancel();
  child.stderr.cancel();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
  };
  await waitFor("den relay", () =>
    fetch(`http://127.0.0.1:${port}/healthz`).then(async (r) => {
      await r.body?.cancel();
      return r.ok;
    }, () => false));
  return { port, metrics, url: `ws://127.0.0.1:${port}`, stop };
}

async function metric(port: number, sample: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(sample + " "));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

/** One request to each port, answered (or null after `ms`). */
async function ask(sock: Deno.DatagramConn, port: number, ms = 1000) {
  const txid = crypto.getRandomValues(new Uint8Array(TXID_BYTES));
  await sock.send(encodeRequest(txid), { transport: "udp", hostname: "127.0.0.1", port });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const got = await Promise.race([
    sock.receive(),
    new Promise<null>((r) => timer = setTimeout(() => r(null), ms)),
  ]);
  clearTimeout(timer);
  if (!got) return null;
  const r = decodeResponse(got[0]);
  assert.ok(r, "a well-formed response");
  assert.deepEqual(r.txid, txid);
  assert.ok(got[0].length <= 64, "never larger than the request");
  return r.mapped;
}

async function firstChallenge(url: string): Promise<Uint8Array> {
  const ws = new WebSocket(`${url}/v1/mailbox`);
  ws.binaryType = "arraybuffer";
  try {
    return await new Promise<Uint8Array>((resolve, reject) => {
      ws.onmessage = (e) => resolve(new Uint8Array(e.data as ArrayBuffer));
      ws.onerror = () => reject(new Error("websocket failed"));
    });
  } finally {
    ws.close();
  }
}

Deno.test({
  name: "reflector: den relay answers on both ports, limits, advertises; den doctor says open",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const r = freePair();
    const relay = await startRelay(["--reflector", `127.0.0.1:${r}`]);
    const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    const me = `127.0.0.1:${(sock.addr as Deno.NetAddr).port}`;
    const dir = await Deno.makeTempDir({ prefix: "den-reflector-" });
    try {
      await t.step("both ports answer with the client's own address", async () => {
        assert.equal(await ask(sock, r), me);
        assert.equal(await ask(sock, r + 1), me);
        assert.equal(await metric(relay.metrics, "den_relay_reflector_answered_total"), 2);
      });

      await t.step("malformed and over-rate requests are dropped and counted", async () => {
        const to = { transport: "udp" as const, hostname: "127.0.0.1", port: r };
        const bad = encodeRequest(new Uint8Array(TXID_BYTES));
        bad[4] = 9; // another version
        for (const d of [new Uint8Array(64), new Uint8Array(10), new Uint8Array(500), bad]) {
          await sock.send(d, to);
        }
        // Burst 40 per source: most of 80 at once go unanswered.
        for (let i = 0; i < 80; i++) await sock.send(encodeRequest(new Uint8Array(12)), to);
        const malformed = 'den_relay_reflector_dropped_total{reason="malformed"}';
        const limited = 'den_relay_reflector_dropped_total{reason="rate_limit"}';
        await waitFor("drops counted", async () =>
          await metric(relay.metrics, malformed) >= 4 &&
          await metric(relay.metrics, limited) >= 30, 5_000);
        // After a second of refill the relay answers again (a fresh socket: no stale answers).
        await new Promise((res) => setTimeout(res, 1_200));
        const fresh = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
        try {
          assert.equal(await ask(fresh, r), `127.0.0.1:${(fresh.addr as Deno.NetAddr).port}`);
        } finally {
          fresh.close();
        }
      });

      await t.step(
        "the ports are in the mailbox challenge and the den-reflector header",
        async () => {
          const c = await firstChallenge(relay.url);
          assert.ok(decodeChallenge(c));
          assert.deepEqual(challengeReflector(c), [r, r + 1]);
          const res = await fetch(`http://127.0.0.1:${relay.port}/healthz`);
          await res.body?.cancel();
          assert.equal(res.headers.get(REFLECTOR_HEADER), `${r},${r + 1}`);
        },
      );

      await t.step("den doctor with this relay configured: nat is open on loopback", async () => {
        const home = `${dir}/node`;
        await initNode(home, "doc", ["--relay", relay.url]);
        const out = await den(["doctor", "--json", "--home", home]);
        const nat = JSON.parse(out.stdout).checks.find((c: { check: string }) => c.check === "nat");
        assert.ok(nat, out.stdout);
        assert.equal(nat.status, "ok", JSON.stringify(nat));
        assert.match(nat.detail, /^open/);
        const text = await den(["doctor", "--home", home]);
        assert.match(text.stdout, /ok\s+nat\s+open: no NAT/);
      });

      await t.step("--reflector off: no header, a challenge without ports", async () => {
        const off = await startRelay(["--reflector", "off"]);
        try {
          const c = await firstChallenge(off.url);
          assert.equal(c.length, 34);
          assert.equal(challengeReflector(c), null);
          const res = await fetch(`http://127.0.0.1:${off.port}/healthz`);
          await res.body?.cancel();
          assert.equal(res.headers.get(REFLECTOR_HEADER), null);
          const home = `${dir}/node2`;
          await initNode(home, "doc2", ["--relay", off.url]);
          const out = await den(["doctor", "--json", "--home", home]);
          const nat = JSON.parse(out.stdout).checks.find((c: { check: string }) =>
            c.check === "nat"
          );
          assert.equal(nat.detail, "no relay with a reflector configured: cannot tell");
        } finally {
          await off.stop();
        }
      });
    } finally {
      sock.close();
      await relay.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
