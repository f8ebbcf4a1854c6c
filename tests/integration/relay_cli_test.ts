/** `den relay` as a user runs it: a child process with its flags, endpoints, logs and exit codes. */
import assert from "node:assert/strict";
import { den, denCommand, freePort, waitFor } from "../../scripts/lib/den_process.ts";

async function get(url: string): Promise<Response | null> {
  try {
    return await fetch(url);
  } catch {
    return null;
  }
}

Deno.test("den relay: serves, exports metrics, logs its address, stops on SIGTERM", async () => {
  const [port, metricsPort] = [freePort(), freePort()];
  const child = denCommand([
    "relay",
    "--listen",
    `127.0.0.1:${port}`,
    "--metrics",
    `127.0.0.1:${metricsPort}`,
    "--max-conns-per-ip",
    "4",
    "--ping-interval",
    "5",
    "--trusted-proxy",
    "10.0.0.1",
  ]).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let log = "";
  const logDone = (async () => {
    for (let r = await stderr.read(); !r.done; r = await stderr.read()) log += r.value;
  })();
  await child.stdout.cancel();
  try {
    await waitFor("den relay /healthz", async () => {
      const res = await get(`http://127.0.0.1:${port}/healthz`);
      await res?.body?.cancel();
      return res?.status === 200 && res.headers.has("date");
    });
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    const text = await metrics.text();
    for (
      const family of [
        "den_relay_connections",
        "den_relay_connections_total",
        "den_relay_connections_refused_total",
        "den_relay_rooms",
        "den_relay_mailboxes",
        "den_relay_frames_forwarded_total",
        "den_relay_bytes_forwarded_total",
        "den_relay_frames_dropped_total",
        "process_resident_memory_bytes",
      ]
    ) assert.match(text, new RegExp(`^# TYPE ${family} `, "m"));
    // The relay port does not serve metrics.
    const notHere = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(notHere.status, 404);
    await notHere.body?.cancel();
  } finally {
    child.kill("SIGTERM");
  }
  const status = await child.status;
  await logDone;
  assert.equal(status.code, 0, log);
  assert.match(
    log,
    new RegExp(`INFO \\[relay\\] den relay listening on ws://127\\.0\\.0\\.1:${port}`),
  );
  assert.match(log, /SIGTERM received, stopping/);
});

Deno.test("den relay: bad flags are usage errors (exit 2) that say what is wrong", async () => {
  const cases: [string[], RegExp][] = [
    [["--listen", "nowhere"], /--listen: "nowhere" is not HOST:PORT/],
    [["--listen", "127.0.0.1:70000"], /out of range/],
    [["--metrics", "9001"], /--metrics: "9001" is not HOST:PORT/],
    [["--max-conns", "0"], /--max-conns: found "0", allowed: a whole number from 1/],
    [["--max-conns-per-ip=-3"], /--max-conns-per-ip: found "-3"/],
    [["--room-rate", "2.5"], /--room-rate: found "2.5", allowed: a whole number from 1/],
    [["--mailbox-rate", "lots"], /--mailbox-rate: found "lots"/],
    [["--ping-interval", "0"], /--ping-interval: found "0"/],
    [["--trusted-proxy", "proxy.example"], /--trusted-proxy: "proxy.example" is not an IP/],
    [["--log-format", "xml"], /--log-format: found "xml", allowed: text, json/],
    [["--log-level", "loud"], /--log-level: found "loud"/],
    [["--tls-cert", "cert.pem"], /--tls-cert needs --tls-key too/],
    [["--tls-key", "key.pem"], /--tls-key needs --tls-cert too/],
    [["--max-con", "5"], /unknown flag --max-con/],
  ];
  await Promise.all(cases.map(async ([args, message]) => {
    const r = await den(["relay", "--listen", "127.0.0.1:1", "--metrics", "off", ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    assert.match(r.stderr, /den: hint: /, `${args.join(" ")} has a hint`);
  }));
});

Deno.test("den relay: unreadable TLS files and a busy port are errors (exit 1) naming them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "den-relay-cli-" });
  try {
    await Deno.writeTextFile(`${dir}/cert.pem`, "not a certificate\n");
    const tlsRelay = () =>
      den([
        "relay",
        "--metrics",
        "off",
        "--tls-cert",
        `${dir}/cert.pem`,
        "--tls-key",
        `${dir}/nope.pem`,
      ]);
    const missing = await tlsRelay();
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /--tls-cert .*cert\.pem is not a PEM file/);

    await Deno.writeTextFile(
      `${dir}/cert.pem`,
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    const noKey = await tlsRelay();
    assert.equal(noKey.code, 1, noKey.stderr);
    assert.match(noKey.stderr, new RegExp(`cannot read --tls-key ${dir}/nope\\.pem`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (busy.addr as Deno.NetAddr).port;
    const r = await den(["relay", "--listen", `127.0.0.1:${port}`, "--metrics", "off"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /den: error: cannot listen: an address is already in use/);
  } finally {
    busy.close();
  }
});
