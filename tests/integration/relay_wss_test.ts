/**
 * Daemons reach each other through a relay over wss:// with a certificate this test generates
 * (trusted through DENO_CERT), with no direct address at all: only fingerprints and the relay.
 */
import assert from "node:assert/strict";
import {
  DaemonProcess,
  den,
  denCommand,
  freePort,
  initNode,
  waitFor,
} from "../../scripts/lib/den_process.ts";
import { run } from "../../scripts/lib/netns.ts";

const openssl = await run(["openssl", "version"]).then(() => true, () => false);
if (!openssl) console.warn("SKIPPED relay wss test: openssl is not installed");

async function makeCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/cert.pem`, key = `${dir}/key.pem`;
  await run([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-keyout",
    key,
    "-out",
    cert,
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-addext",
    "basicConstraints=critical,CA:FALSE",
  ]);
  return { cert, key };
}

Deno.test({
  name: "relay wss: two daemons with only fingerprints meet through a TLS relay",
  ignore: !openssl,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "den-wss-" });
    const { cert, key } = await makeCert(dir);
    const port = freePort();
    const relay = denCommand([
      "relay",
      "--listen",
      `127.0.0.1:${port}`,
      "--metrics",
      "off",
      "--tls-cert",
      cert,
      "--tls-key",
      key,
    ]).spawn();
    relay.stdout.cancel();
    relay.stderr.cancel();
    const env = { DENO_CERT: cert };
    const daemons: DaemonProcess[] = [];
    try {
      const url = `wss://localhost:${port}`;
      const hA = `${dir}/alice`, hB = `${dir}/bob`;
      const fpA = (await initNode(hA, "alice", ["--relay", url])).fingerprint;
      const fpB = (await initNode(hB, "bob", ["--relay", url])).fingerprint;
      assert.equal(
        (await den(["add-peer", "bob", "--fingerprint", fpB, "--home", hA])).code,
        0,
      );
      assert.equal(
        (await den(["add-peer", "alice", "--fingerprint", fpA, "--home", hB])).code,
        0,
      );
      daemons.push(await DaemonProcess.start(hA, { env }), await DaemonProcess.start(hB, { env }));

      await waitFor("session over wss", async () => {
        const r = await den(["peers", "--json", "--home", hA]);
        const bob = JSON.parse(r.stdout || "[]")[0];
        return bob?.state === "connected" && bob.transport === "relay";
      }, 30_000);
      const st = JSON.parse((await den(["status", "--json", "--home", hB])).stdout);
      assert.deepEqual(st.relays, [{ url, state: "ready", reason: null }]);
      const bad = await den(["ping", "bob", "--size", "70000", "--home", hA]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--size: found "70000", allowed: a whole number from 1 to 60000/);
      const ping = await den(["ping", "bob", "--count", "1", "--home", hA]);
      assert.equal(ping.code, 0, ping.stderr);
      assert.match(
        ping.stdout,
        new RegExp(`pong from bob via relay wss://localhost:${port}`),
      );
    } finally {
      for (const d of daemons) await d.stop();
      relay.kill("SIGTERM");
      await relay.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
