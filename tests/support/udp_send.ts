/**
 * Sends raw UDP datagrams, one per HEX argument, from an ephemeral port (tests/e2e/
 * vpn_dataplane_test.ts: replayed, tampered and misaddressed data-plane datagrams, sent from
 * inside a network namespace with `ip netns exec NS deno run …`).
 *
 *   deno run --allow-net --unstable-net tests/support/udp_send.ts HOST PORT HEX…
 *
 * Prints one line per datagram sent: its length.
 */
const [hostname, portText, ...hexes] = Deno.args;
const port = Number(portText);
if (!hostname || !Number.isInteger(port) || port <= 0 || port > 65535 || hexes.length === 0) {
  console.error("usage: udp_send.ts HOST PORT HEX…");
  Deno.exit(2);
}
const datagrams = hexes.map((h) => {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(h)) {
    console.error(`udp_send.ts: not an even-length hex string: ${h.slice(0, 40)}`);
    Deno.exit(2);
  }
  return Uint8Array.fromHex(h);
});

const socket = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 });
try {
  for (const d of datagrams) {
    const sent = await socket.send(d, { transport: "udp", hostname, port });
    console.log(`sent ${sent} bytes to ${hostname}:${port}`);
  }
} finally {
  socket.close();
}
