import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { concatBytes, toHex, utf8 } from "../../src/crypto/encoding.ts";
import {
  type Cidr,
  formatCidr,
  formatIp,
  parseCidr,
  parseIp,
} from "../../src/config/validators.ts";
import { MAX_RECORD_PAYLOAD } from "../../src/session/record.ts";
import {
  decodePackets,
  decodeRefused,
  decodeRoutes,
  encodePackets,
  encodeRefused,
  encodeRoutes,
  MAX_ROUTES,
  netTag,
  packetDestination,
  packetProblem,
  packetSource,
  type RoutesMessage,
  VpnMsgType,
} from "../../src/wire/vpn.ts";

// ---- helpers ----

/** An IPv4 packet: 20-byte header (or ihl words) with `payload` bytes after it. */
function ipv4(src: string, dst: string, payload = 8, ihl = 5): Uint8Array {
  const total = ihl * 4 + payload;
  const p = new Uint8Array(total);
  p[0] = 0x40 | ihl;
  p[2] = total >> 8;
  p[3] = total & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set(parseIp(src).bytes, 12);
  p.set(parseIp(dst).bytes, 16);
  for (let i = ihl * 4; i < total; i++) p[i] = i & 0xff;
  return p;
}

function ipv6(src: string, dst: string, payload = 8): Uint8Array {
  const p = new Uint8Array(40 + payload);
  p[0] = 0x60;
  p[4] = payload >> 8;
  p[5] = payload & 0xff;
  p[6] = 58;
  p[7] = 64;
  p.set(parseIp(src).bytes, 8);
  p.set(parseIp(dst).bytes, 24);
  for (let i = 40; i < p.length; i++) p[i] = i & 0xff;
  return p;
}

const TAG = netTag("office");
const cidrs = (...s: string[]) => s.map((c) => parseCidr(c));
const routeTexts = (m: RoutesMessage | null) => m?.routes.map(formatCidr);
const json = (o: unknown) => utf8(JSON.stringify(o));
const GOOD = {
  v: 1,
  net: "office",
  addr: "100.64.0.5",
  routes: ["100.64.0.5/32", "10.1.0.0/16"],
  ttl_ms: 90_000,
};

// ---- types and tags ----

Deno.test("vpn wire: message types and the netTag vector", () => {
  assert.deepEqual(VpnMsgType, { routes: 26, packets: 27, refused: 28, offer: 29 });
  assert.equal(toHex(netTag("office")), "0c41048d");
  const direct = createHash("sha256").update("den-vpn-net-v1office").digest();
  assert.equal(toHex(netTag("office")), toHex(new Uint8Array(direct.subarray(0, 4))));
  assert.notEqual(toHex(netTag("lab")), toHex(netTag("office")));
  for (const bad of ["", "Office", "1net", "a".repeat(16), "of fice", "büro"]) {
    assert.throws(() => netTag(bad), RangeError, bad);
  }
});

// ---- routes ----

Deno.test("routes: round trip, canonical JSON", () => {
  const msg: RoutesMessage = {
    net: "office",
    addr: parseIp("100.64.0.5"),
    routes: cidrs("100.64.0.5/32", "10.1.0.0/16", "fd00:1::/64", "0.0.0.0/0"),
    ttlMs: 90_000,
  };
  const bytes = encodeRoutes(msg);
  assert.equal(
    new TextDecoder().decode(bytes),
    '{"v":1,"net":"office","addr":"100.64.0.5","routes":["100.64.0.5/32","10.1.0.0/16",' +
      '"fd00:1::/64","0.0.0.0/0"],"ttl_ms":90000}',
  );
  const back = decodeRoutes(bytes)!;
  assert.equal(back.net, "office");
  assert.equal(formatIp(back.addr!), "100.64.0.5");
  assert.deepEqual(routeTexts(back), ["100.64.0.5/32", "10.1.0.0/16", "fd00:1::/64", "0.0.0.0/0"]);
  assert.equal(back.ttlMs, 90_000);
  // A withdrawal: no address, no routes.
  const bye = decodeRoutes(encodeRoutes({ net: "lab-2", addr: null, routes: [], ttlMs: 1000 }));
  assert.deepEqual(bye, { net: "lab-2", addr: null, routes: [], ttlMs: 1000 });
  // IPv6 address.
  const v6 = decodeRoutes(encodeRoutes({ ...msg, addr: parseIp("fd00::5") }))!;
  assert.equal(formatIp(v6.addr!), "fd00::5");
});

Deno.test("routes: the encoder clears host bits, drops duplicates and enforces bounds", () => {
  const loose = parseCidr("10.1.2.3/16", { allowHostBits: true });
  const out = decodeRoutes(
    encodeRoutes({
      net: "office",
      addr: null,
      routes: [loose, ...cidrs("10.1.0.0/16")],
      ttlMs: 1000,
    }),
  );
  assert.deepEqual(routeTexts(out), ["10.1.0.0/16"]);
  const base: RoutesMessage = { net: "office", addr: null, routes: [], ttlMs: 60_000 };
  // 256 of the longest IPv6 prefixes fit (and decode); 257 do not.
  const many: Cidr[] = Array.from(
    { length: 257 },
    (_, i) => parseCidr(`ffff:ffff:ffff:ffff:ffff:ffff:ffff:${(0xfe00 + i).toString(16)}/128`),
  );
  assert.equal(
    decodeRoutes(encodeRoutes({ ...base, routes: many.slice(0, MAX_ROUTES) }))!.routes.length,
    256,
  );
  assert.throws(() => encodeRoutes({ ...base, routes: many }), RangeError);
  for (const ttlMs of [999, 600_001, 1.5, NaN]) {
    assert.throws(() => encodeRoutes({ ...base, ttlMs }), RangeError);
  }
  for (const net of ["", "Office", "a".repeat(16), "-x"]) {
    assert.throws(() => encodeRoutes({ ...base, net }), RangeError);
  }
  assert.throws(
    () => encodeRoutes({ ...base, addr: { family: 4, bytes: new Uint8Array(16) } }),
    RangeError,
  );
  assert.throws(
    () =>
      encodeRoutes({ ...base, routes: [{ family: 6, address: new Uint8Array(16), bits: 129 }] }),
    RangeError,
  );
});

Deno.test("routes: every truncation is rejected", () => {
  const bytes = json(GOOD);
  assert.ok(decodeRoutes(bytes));
  for (let n = 0; n < bytes.length; n++) {
    assert.equal(decodeRoutes(bytes.subarray(0, n)), null, `truncated to ${n}`);
  }
});

Deno.test("routes: versions, keys and types are checked strictly", () => {
  const bad: unknown[] = [
    { ...GOOD, v: 0 },
    { ...GOOD, v: 2 },
    { ...GOOD, v: "1" },
    { ...GOOD, extra: true },
    (({ ttl_ms: _, ...rest }) => rest)(GOOD),
    (({ addr: _, ...rest }) => rest)(GOOD),
    { ...GOOD, net: "Office" },
    { ...GOOD, net: "a".repeat(16) },
    { ...GOOD, net: 7 },
    { ...GOOD, addr: "100.064.0.5" },
    { ...GOOD, addr: "FD00::5" },
    { ...GOOD, addr: "fd00:0::5" },
    { ...GOOD, addr: "100.64.0.5/32" },
    { ...GOOD, addr: 5 },
    { ...GOOD, routes: "10.0.0.0/8" },
    { ...GOOD, routes: ["10.1.2.3/16"] }, // host bits set
    { ...GOOD, routes: ["10.1.0.0"] },
    { ...GOOD, routes: ["FD00::/8"] },
    { ...GOOD, routes: ["10.1.0.0/16", "10.1.0.0/16"] },
    { ...GOOD, routes: [null] },
    { ...GOOD, routes: Array.from({ length: 257 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`) },
    { ...GOOD, ttl_ms: 999 },
    { ...GOOD, ttl_ms: 600_001 },
    { ...GOOD, ttl_ms: 1000.5 },
    { ...GOOD, ttl_ms: "1000" },
    [GOOD],
    null,
    42,
    "routes",
  ];
  for (const b of bad) assert.equal(decodeRoutes(json(b)), null, JSON.stringify(b));
  // __proto__ as a JSON key is an own property: an unknown key, not a prototype change.
  const proto = utf8(JSON.stringify(GOOD).replace('"v":1', '"v":1,"__proto__":{}'));
  assert.equal(decodeRoutes(proto), null);
  // Invalid UTF-8 inside a string, and a message over the size bound.
  const text = JSON.stringify(GOOD);
  const at = text.indexOf("office") + 1;
  const broken = utf8(text);
  broken[at] = 0xff;
  assert.equal(decodeRoutes(broken), null);
  assert.equal(decodeRoutes(utf8(text + " ".repeat(17_000))), null);
  // Whitespace and key order are fine (it is JSON), and 256 routes are.
  assert.ok(
    decodeRoutes(
      utf8(JSON.stringify({ ttl_ms: 1000, routes: [], addr: null, net: "x", v: 1 }, null, 2)),
    ),
  );
  const max = Array.from({ length: 256 }, (_, i) => `10.${i}.0.0/16`);
  assert.equal(decodeRoutes(json({ ...GOOD, routes: max }))!.routes.length, 256);
});

// ---- packets ----

Deno.test("packets: round trip of IPv4 and IPv6 packets", () => {
  const packets = [
    ipv4("100.64.0.5", "100.64.0.9", 0),
    ipv6("fd00::5", "fd00::9", 100),
    ipv4("10.1.0.1", "10.2.0.1", 1360, 15), // maximal IPv4 options
    ipv6("fd00::5", "fd00::9", 0),
  ];
  const { payload, taken } = encodePackets(TAG, packets);
  assert.equal(taken, 4);
  assert.equal(payload.length, 4 + packets.reduce((n, p) => n + 2 + p.length, 0));
  assert.deepEqual(payload.subarray(0, 4), TAG);
  const back = decodePackets(payload)!;
  assert.deepEqual(back.tag, TAG);
  assert.deepEqual(back.packets, packets);
  for (const p of packets) assert.equal(packetProblem(p), null);
});

Deno.test("packets: encode packs as many as fit, in order", () => {
  const p = ipv4("100.64.0.5", "100.64.0.9", 980); // 1000 bytes, 1002 framed
  const list = Array.from({ length: 100 }, () => p);
  const full = encodePackets(TAG, list);
  assert.equal(full.taken, Math.floor((MAX_RECORD_PAYLOAD - 4) / 1002));
  assert.ok(full.payload.length <= MAX_RECORD_PAYLOAD);
  const small = encodePackets(TAG, list, 4 + 3 * 1002);
  assert.equal(small.taken, 3);
  assert.equal(small.payload.length, 4 + 3 * 1002);
  assert.equal(encodePackets(TAG, list, 4 + 3 * 1002 - 1).taken, 2);
  // A big packet stops the batch; the smaller one after it waits for the next message.
  const mixed = [ipv4("10.0.0.1", "10.0.0.2", 80), ipv4("10.0.0.1", "10.0.0.2", 1980), p];
  assert.equal(encodePackets(TAG, mixed, 2000).taken, 1);
  // The largest packet a u16 can frame fits alone in a maximal message? No: 4 + 2 + 65535 > 65535.
  const huge = ipv4("10.0.0.1", "10.0.0.2", 65535 - 20);
  assert.equal(packetProblem(huge), null);
  assert.throws(() => encodePackets(TAG, [huge]), /does not fit/);
  assert.equal(encodePackets(TAG, [ipv4("10.0.0.1", "10.0.0.2", 65529 - 20)]).taken, 1);
});

Deno.test("packets: encode refuses what would not decode", () => {
  const good = ipv4("10.0.0.1", "10.0.0.2");
  assert.throws(() => encodePackets(TAG, []), RangeError);
  assert.throws(() => encodePackets(new Uint8Array(3), [good]), RangeError);
  assert.throws(() => encodePackets(TAG, [good], 10), RangeError);
  assert.throws(() => encodePackets(TAG, [good], MAX_RECORD_PAYLOAD + 1), RangeError);
  const bent = good.slice();
  bent[3] += 1; // total length disagrees
  assert.throws(() => encodePackets(TAG, [good, bent]), /packet 1: .*total length/);
  assert.throws(() => encodePackets(TAG, [new Uint8Array(0)]), /empty/);
  // Only the packets taken are checked: a bad one that would not fit anyway waits.
  assert.equal(encodePackets(TAG, [good, bent], 4 + 2 + good.length).taken, 1);
});

Deno.test("packets: every truncation is rejected or ends at a whole packet", () => {
  const packets = [ipv4("10.0.0.1", "10.0.0.2", 30), ipv6("fd00::1", "fd00::2", 12)];
  const { payload } = encodePackets(TAG, packets);
  const boundary = 4 + 2 + packets[0].length;
  for (let n = 0; n < payload.length; n++) {
    const got = decodePackets(payload.subarray(0, n));
    if (n === boundary) {
      // Framing cannot tell a cut between packets; the session's AEAD already guarantees that
      // a record arrives whole, so this only happens if the sender meant it.
      assert.deepEqual(got?.packets, [packets[0]]);
    } else {
      assert.equal(got, null, `truncated to ${n}`);
    }
  }
});

Deno.test("packets: malformed frames and headers are rejected", () => {
  const v4 = ipv4("10.0.0.1", "10.0.0.2", 20);
  const v6 = ipv6("fd00::1", "fd00::2", 20);
  const frame = (...ps: Uint8Array[]) => {
    return concatBytes(
      TAG,
      ...ps.flatMap((p) => [new Uint8Array([p.length >> 8, p.length & 0xff]), p]),
    );
  };
  const edit = (p: Uint8Array, f: (c: Uint8Array) => void) => {
    const c = p.slice();
    f(c);
    return c;
  };
  assert.ok(decodePackets(frame(v4, v6)));
  const bad: [string, Uint8Array][] = [
    ["tag only", TAG.slice()],
    ["a zero-length packet", frame(v4, new Uint8Array(0))],
    ["version 5", frame(edit(v4, (c) => c[0] = 0x55))],
    ["version 0", frame(edit(v6, (c) => c[0] = 0x00))],
    ["IPv4 total length too small", frame(edit(v4, (c) => c[3] -= 1))],
    ["IPv4 total length too large", frame(edit(v4, (c) => c[3] += 1))],
    ["IPv4 IHL below 5", frame(edit(v4, (c) => c[0] = 0x44))],
    ["IPv4 IHL past the end", frame(ipv4("10.0.0.1", "10.0.0.2", 0).map((b, i) => i ? b : 0x46))],
    ["IPv4 shorter than a header", frame(new Uint8Array([0x45, 0, 0, 10, 0, 0, 0, 0, 0, 0]))],
    ["IPv6 payload length too small", frame(edit(v6, (c) => c[5] -= 1))],
    ["IPv6 payload length too large", frame(edit(v6, (c) => c[5] += 1))],
    ["IPv6 shorter than a header", frame(v6.subarray(0, 39))],
    ["a trailing byte", new Uint8Array([...frame(v4), 0])],
    ["a length past the end", edit(frame(v4), (c) => c[5] += 1)],
    ["too large", new Uint8Array(MAX_RECORD_PAYLOAD + 1)],
  ];
  for (const [what, bytes] of bad) assert.equal(decodePackets(bytes), null, what);
  assert.match(packetProblem(new Uint8Array(0))!, /empty/);
  assert.match(packetProblem(edit(v4, (c) => c[0] = 0x75))!, /not an IPv4 or IPv6/);
  assert.match(packetProblem(new Uint8Array(70_000))!, /65535/);
});

Deno.test("packets: a flipped byte never yields a differently framed message", () => {
  const packets = [ipv4("10.0.0.1", "10.0.0.2", 6), ipv6("fd00::1", "fd00::2", 4)];
  const { payload } = encodePackets(TAG, packets);
  const lengths = packets.map((p) => p.length);
  for (let i = 0; i < payload.length; i++) {
    for (const x of [0x01, 0x10, 0x80, 0xff]) {
      const t = payload.slice();
      t[i] ^= x;
      const got = decodePackets(t);
      if (got) assert.deepEqual(got.packets.map((p) => p.length), lengths, `byte ${i} ^ ${x}`);
    }
  }
});

Deno.test("packetDestination and packetSource read IPv4 and IPv6 headers", () => {
  const v4 = ipv4("100.64.0.5", "10.1.2.3");
  assert.equal(formatIp(packetSource(v4)!), "100.64.0.5");
  assert.equal(formatIp(packetDestination(v4)!), "10.1.2.3");
  const v6 = ipv6("fd00::5", "2001:db8::77");
  assert.equal(formatIp(packetSource(v6)!), "fd00::5");
  assert.equal(formatIp(packetDestination(v6)!), "2001:db8::77");
  // Copies, not views.
  const dst = packetDestination(v4)!;
  v4[16] = 99;
  assert.equal(formatIp(dst), "10.1.2.3");
  for (
    const p of [
      new Uint8Array(0),
      v4.subarray(0, 19),
      v6.subarray(0, 39),
      new Uint8Array(40).fill(0x50),
      new Uint8Array(40),
    ]
  ) {
    assert.equal(packetDestination(p), null);
    assert.equal(packetSource(p), null);
  }
});

Deno.test("vpn wire: a refused announcement round trips; malformed ones are dropped", () => {
  const msg = {
    net: "office",
    prefix: parseCidr("10.55.0.0/24"),
    reason: "10.55.0.0/24: not allowed",
  };
  const back = decodeRefused(encodeRefused(msg));
  assert.ok(back);
  assert.equal(back.net, "office");
  assert.equal(formatCidr(back.prefix), "10.55.0.0/24");
  assert.equal(back.reason, msg.reason);
  const bad = [
    "",
    "{}",
    '{"v":2,"net":"office","prefix":"10.55.0.0/24","reason":"x"}',
    '{"v":1,"net":"Office","prefix":"10.55.0.0/24","reason":"x"}',
    '{"v":1,"net":"office","prefix":"10.55.0.1/24","reason":"x"}',
    '{"v":1,"net":"office","prefix":"10.55.0.0/24","reason":7}',
    `{"v":1,"net":"office","prefix":"10.55.0.0/24","reason":"${"x".repeat(301)}"}`,
  ];
  for (const text of bad) assert.equal(decodeRefused(new TextEncoder().encode(text)), null, text);
});
