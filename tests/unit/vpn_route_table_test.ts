import assert from "node:assert/strict";
import { formatCidr, parseCidr, parseIp } from "../../src/config/validators.ts";
import { compareCidr, type Route, RouteTable } from "../../src/vpn/route_table.ts";

const A = "a".repeat(51) + "a"; // lowest
const B = "b".repeat(51) + "a";
const C = "c".repeat(51) + "a";
const TTL = 60_000;

const cidrs = (...s: string[]) => s.map((c) => parseCidr(c));
/** The peer a destination goes to, or null. */
function via(t: RouteTable, ip: string, now?: number): string | null {
  return t.lookup(parseIp(ip), now)?.peer ?? null;
}
/** The prefix a destination matched, or null. */
function matched(t: RouteTable, ip: string): string | null {
  const r = t.lookup(parseIp(ip));
  return r ? formatCidr(r.prefix) : null;
}
const show = (rs: Route[]) => rs.map((r) => `${formatCidr(r.prefix)} ${r.peer[0]}`);

Deno.test("RouteTable: longest prefix wins", () => {
  const t = new RouteTable();
  t.announce(A, cidrs("10.0.0.0/8"), 0, TTL);
  t.announce(B, cidrs("10.1.0.0/16"), 0, TTL);
  t.announce(C, cidrs("10.1.2.0/24", "10.1.2.3/32"), 0, TTL);
  assert.equal(via(t, "10.9.9.9"), A);
  assert.equal(via(t, "10.1.9.9"), B);
  assert.equal(via(t, "10.1.2.9"), C);
  assert.equal(matched(t, "10.1.2.3"), "10.1.2.3/32");
  assert.equal(matched(t, "10.1.2.4"), "10.1.2.0/24");
  assert.equal(via(t, "11.0.0.1"), null);
  assert.equal(t.size, 4);
});

Deno.test("RouteTable: a default route 0.0.0.0/0 catches everything else (and ::/0)", () => {
  const t = new RouteTable();
  t.announce(A, cidrs("0.0.0.0/0"), 0, TTL);
  t.announce(B, cidrs("192.168.1.0/24", "::/0"), 0, TTL);
  assert.equal(via(t, "8.8.8.8"), A);
  assert.equal(via(t, "255.255.255.255"), A);
  assert.equal(via(t, "192.168.1.20"), B);
  assert.equal(via(t, "2001:db8::1"), B);
  assert.equal(matched(t, "0.0.0.0"), "0.0.0.0/0");
});

Deno.test("RouteTable: IPv4 and IPv6 never match each other", () => {
  const t = new RouteTable();
  // ::/96 has the same leading bytes as any IPv4 address would if confused with it.
  t.announce(A, cidrs("::/96", "fd00::/8"), 0, TTL);
  t.announce(B, cidrs("10.0.0.0/8"), 0, TTL);
  assert.equal(via(t, "10.0.0.1"), B);
  assert.equal(via(t, "::a00:1"), A);
  assert.equal(via(t, "fd00::1"), A);
  assert.equal(via(t, "192.0.2.1"), null);
  assert.equal(via(t, "2001:db8::1"), null);
  // A malformed address (bytes of the wrong family) matches nothing.
  assert.equal(t.lookup({ family: 4, bytes: new Uint8Array(16) }), null);
  assert.equal(t.lookup({ family: 6, bytes: new Uint8Array(4) }), null);
});

Deno.test("RouteTable: IPv6 prefixes at every granularity", () => {
  const t = new RouteTable();
  t.announce(A, cidrs("2001:db8::/32"), 0, TTL);
  t.announce(B, cidrs("2001:db8:0:1::/64", "2001:db8:0:1:8000::/65"), 0, TTL);
  t.announce(C, cidrs("2001:db8:0:1::7/128", "2001:db8:0:1:8000::/67"), 0, TTL);
  assert.equal(matched(t, "2001:db8:ffff::1"), "2001:db8::/32");
  assert.equal(matched(t, "2001:db8:0:1::8"), "2001:db8:0:1::/64");
  assert.equal(matched(t, "2001:db8:0:1::7"), "2001:db8:0:1::7/128");
  assert.equal(matched(t, "2001:db8:0:1:9fff::1"), "2001:db8:0:1:8000::/67");
  assert.equal(matched(t, "2001:db8:0:1:a000::1"), "2001:db8:0:1:8000::/65");
  assert.equal(matched(t, "2001:db9::1"), null);
});

Deno.test("RouteTable: ties are decided by metric, then fingerprint, whatever the order", () => {
  const orders = [[A, B, C], [C, B, A], [B, C, A], [C, A, B]];
  for (const order of orders) {
    const t = new RouteTable();
    for (const peer of order) t.announce(peer, cidrs("10.5.0.0/16", "fd05::/16"), 0, TTL);
    assert.equal(via(t, "10.5.1.1"), A, `order ${order.map((p) => p[0])}`);
    assert.equal(via(t, "fd05::1"), A);
    // A lower metric beats a lower fingerprint.
    t.announce(C, cidrs("10.5.0.0/16"), 0, TTL, 0);
    t.announce(A, cidrs("10.5.0.0/16"), 0, TTL, 5);
    t.announce(B, cidrs("10.5.0.0/16"), 0, TTL, 5);
    assert.equal(via(t, "10.5.1.1"), C);
    t.withdraw(C);
    assert.equal(via(t, "10.5.1.1"), A);
  }
});

Deno.test("RouteTable: announce replaces a peer's set and reports what changed", () => {
  const t = new RouteTable();
  const first = t.announce(A, cidrs("10.1.0.0/16", "10.2.0.0/16"), 0, TTL);
  assert.deepEqual(show(first.added), ["10.1.0.0/16 a", "10.2.0.0/16 a"]);
  assert.deepEqual(first.removed, []);
  const second = t.announce(A, cidrs("10.2.0.0/16", "10.3.0.0/16", "10.3.0.0/16"), 1000, TTL);
  assert.deepEqual(show(second.added), ["10.3.0.0/16 a"]);
  assert.deepEqual(show(second.removed), ["10.1.0.0/16 a"]);
  assert.equal(via(t, "10.1.0.1"), null);
  assert.equal(via(t, "10.3.0.1"), A);
  // A refresh is not a change, but moves the expiry.
  const refresh = t.announce(A, cidrs("10.2.0.0/16", "10.3.0.0/16"), 5000, TTL);
  assert.deepEqual(refresh, { added: [], removed: [] });
  assert.deepEqual(t.routes().map((r) => r.expiresAt), [5000 + TTL, 5000 + TTL]);
  // A metric change is reported as the old route removed and the new one added.
  const metric = t.announce(A, cidrs("10.2.0.0/16", "10.3.0.0/16"), 5000, TTL, 3);
  assert.equal(metric.added.length, 2);
  assert.deepEqual(metric.removed.map((r) => r.metric), [0, 0]);
  assert.deepEqual(metric.added.map((r) => r.metric), [3, 3]);
  // Host bits are cleared: 10.4.0.1/16 is 10.4.0.0/16.
  const loose = t.announce(B, [parseCidr("10.4.0.1/16", { allowHostBits: true })], 0, TTL);
  assert.deepEqual(show(loose.added), ["10.4.0.0/16 b"]);
  // An empty announcement withdraws.
  assert.deepEqual(show(t.announce(A, [], 0, TTL).removed), ["10.2.0.0/16 a", "10.3.0.0/16 a"]);
  assert.deepEqual(show(t.routes()), ["10.4.0.0/16 b"]);
  assert.equal(t.size, 1);
});

Deno.test("RouteTable: withdraw removes exactly that peer's routes", () => {
  const t = new RouteTable();
  t.announce(A, cidrs("10.0.0.0/8", "10.1.0.0/16", "fd00::/8"), 0, TTL);
  t.announce(B, cidrs("10.1.0.0/16", "10.2.0.0/16"), 0, TTL);
  assert.equal(via(t, "10.1.0.1"), A);
  const removed = t.withdraw(A);
  assert.deepEqual(show(removed), ["10.0.0.0/8 a", "10.1.0.0/16 a", "fd00::/8 a"]);
  assert.deepEqual(show(t.routes()), ["10.1.0.0/16 b", "10.2.0.0/16 b"]);
  assert.equal(via(t, "10.1.0.1"), B); // the other peer's route for the same prefix takes over
  assert.equal(via(t, "10.9.0.1"), null);
  assert.equal(via(t, "fd00::1"), null);
  assert.deepEqual(t.withdraw(A), []);
  assert.deepEqual(t.withdraw(C), []);
  assert.deepEqual(t.peerRoutes(A), []);
  assert.equal(t.peerRoutes(B).length, 2);
});

Deno.test("RouteTable: expire removes exactly the routes past their time", () => {
  const t = new RouteTable();
  t.announce(A, cidrs("10.1.0.0/16", "fd01::/16"), 0, 10_000);
  t.announce(B, cidrs("10.1.0.0/16"), 5_000, 10_000);
  t.announce(C, cidrs("10.0.0.0/8"), 0, 30_000);
  assert.equal(t.nextExpiry(), 10_000);
  assert.deepEqual(t.expire(9_999), []);
  assert.equal(via(t, "10.1.0.1"), A);
  assert.deepEqual(show(t.expire(10_000)), ["10.1.0.0/16 a", "fd01::/16 a"]);
  assert.equal(via(t, "10.1.0.1"), B);
  assert.equal(via(t, "fd01::1"), null);
  assert.equal(t.nextExpiry(), 15_000);
  assert.deepEqual(show(t.expire(20_000)), ["10.1.0.0/16 b"]);
  assert.equal(via(t, "10.1.0.1"), C);
  assert.deepEqual(show(t.expire(30_000)), ["10.0.0.0/8 c"]);
  assert.equal(t.size, 0);
  assert.equal(t.nextExpiry(), null);
});

Deno.test("RouteTable: lookup with now passes over expired routes not yet removed", () => {
  const t = new RouteTable();
  t.announce(A, cidrs("10.1.0.0/16"), 0, 10_000);
  t.announce(B, cidrs("10.1.0.0/16"), 0, 20_000);
  t.announce(C, cidrs("10.0.0.0/8"), 0, 30_000);
  assert.equal(via(t, "10.1.0.1", 5_000), A);
  assert.equal(via(t, "10.1.0.1", 10_000), B);
  assert.equal(via(t, "10.1.0.1", 20_000), C);
  assert.equal(via(t, "10.1.0.1", 30_000), null);
  assert.equal(via(t, "10.1.0.1"), A); // without now, expiry is the caller's business
  assert.equal(t.size, 3); // lookup removes nothing
});

Deno.test("RouteTable: the lookup cache follows every change", () => {
  const t = new RouteTable();
  assert.equal(via(t, "10.1.2.3"), null);
  t.announce(B, cidrs("10.0.0.0/8"), 0, TTL);
  assert.equal(via(t, "10.1.2.3"), B);
  t.announce(C, cidrs("10.1.0.0/16"), 0, TTL);
  assert.equal(via(t, "10.1.2.3"), C);
  t.announce(A, cidrs("10.1.0.0/16"), 0, TTL);
  assert.equal(via(t, "10.1.2.3"), A);
  t.expire(TTL);
  assert.equal(via(t, "10.1.2.3"), null);
  // Many distinct destinations (beyond the cache bound) still answer right.
  t.announce(A, cidrs("10.0.0.0/9"), 0, TTL);
  t.announce(B, cidrs("10.128.0.0/9"), 0, TTL);
  for (let i = 0; i < 20_000; i++) {
    const ip = `10.${(i * 7) & 255}.${(i >> 8) & 255}.${i & 255}`;
    assert.equal(via(t, ip), ((i * 7) & 255) < 128 ? A : B);
  }
});

Deno.test("RouteTable: routes() is sorted by prefix, then peer", () => {
  const t = new RouteTable();
  t.announce(C, cidrs("fd00::/8", "10.0.0.0/16", "10.0.0.0/8"), 0, TTL);
  t.announce(A, cidrs("10.0.0.0/16", "9.0.0.0/8"), 0, TTL);
  assert.deepEqual(show(t.routes()), [
    "9.0.0.0/8 a",
    "10.0.0.0/8 c",
    "10.0.0.0/16 a",
    "10.0.0.0/16 c",
    "fd00::/8 c",
  ]);
  assert.ok(compareCidr(parseCidr("10.0.0.0/8"), parseCidr("::/0")) < 0);
  assert.ok(Object.isFrozen(t.routes()[0]));
});

Deno.test("RouteTable: bad input is a RangeError", () => {
  const t = new RouteTable();
  const ok = cidrs("10.0.0.0/8");
  assert.throws(() => t.announce(A, ok, 0, 0), RangeError);
  assert.throws(() => t.announce(A, ok, NaN, TTL), RangeError);
  assert.throws(() => t.announce(A, ok, 0, TTL, -1), RangeError);
  assert.throws(
    () => t.announce(A, [{ family: 4, address: new Uint8Array(16), bits: 8 }], 0, TTL),
    RangeError,
  );
  assert.throws(
    () => t.announce(A, [{ family: 4, address: new Uint8Array(4), bits: 33 }], 0, TTL),
    RangeError,
  );
  assert.equal(t.size, 0);
});
