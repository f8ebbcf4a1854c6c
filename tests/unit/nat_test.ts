/**
 * NAT traversal's pure cores (docs/NAT.md): the reflector codec and its limits, the reflector
 * ports in the relay challenge, the reflect round, NAT classification and verdicts, offer v2,
 * and path probing restarting on new (or learned) candidates.
 */
import assert from "node:assert/strict";
import { ReflectorCore } from "../../relay/reflector.ts";
import { parseIp } from "../../src/config/validators.ts";
import { classifyNat, localEndpoints, natVerdict } from "../../src/vpn/nat.ts";
import {
  EAGER_FOR_MS,
  MAX_LEARNED,
  PathState,
  PROBE_EVERY_MS,
  SLOW_PROBE_MS,
} from "../../src/vpn/dataplane/path.ts";
import {
  REFLECT_EVERY_MS,
  REFLECT_FOR_MS,
  REFLECT_TRIES,
  ReflectJob,
} from "../../src/vpn/dataplane/reflect.ts";
import {
  DatagramKind,
  decodeOffer,
  encodeOffer,
  MAX_OFFER_BYTES,
  type Offer,
} from "../../src/wire/dataplane.ts";
import {
  canonicalEndpoint,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  isReflectorMessage,
  parseReflectorHeader,
  REQUEST_BYTES,
} from "../../src/wire/reflector.ts";
import {
  challengeReflector,
  decodeChallenge,
  encodeChallenge,
} from "../../src/wire/relay_mailbox.ts";

const TXID = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
const hex = (b: Uint8Array) => b.toHex();

// ---- reflector codec ----

Deno.test("reflector: the vectors of docs/NAT.md", () => {
  assert.equal(
    hex(encodeRequest(TXID)),
    "44454e5201010102030405060708090a0b0c" + "00".repeat(46),
  );
  assert.equal(
    hex(encodeResponse(TXID, parseIp("203.0.113.7"), 41000)),
    "44454e5201020102030405060708090a0b0c04a028cb007107",
  );
  assert.equal(
    hex(encodeResponse(TXID, parseIp("2001:db8::7"), 41000)),
    "44454e5201020102030405060708090a0b0c06a02820010db8000000000000000000000007",
  );
});

Deno.test("reflector: round trips; IPv4-mapped answers as IPv4; never larger than a request", () => {
  const req = encodeRequest(TXID);
  assert.equal(req.length, REQUEST_BYTES);
  assert.deepEqual(decodeRequest(req), TXID);
  for (
    const [ip, port, mapped] of [
      ["10.211.1.1", 7834, "10.211.1.1:7834"],
      ["2001:db8::1", 1, "[2001:db8::1]:1"],
      ["::ffff:10.0.0.9", 65535, "10.0.0.9:65535"],
    ] as const
  ) {
    const resp = encodeResponse(TXID, parseIp(ip), port);
    assert.ok(resp.length < req.length, `${resp.length} bytes answer ${req.length}`);
    assert.deepEqual(decodeResponse(resp), { txid: TXID, mapped });
  }
  assert.ok(isReflectorMessage(req));
  // Den datagrams start with their kind: they can never look like the reflector.
  for (const kind of Object.values(DatagramKind)) {
    assert.ok(!isReflectorMessage(Uint8Array.of(kind, 0x45, 0x4e, 0x52)));
  }
  assert.throws(() => encodeRequest(new Uint8Array(11)), RangeError);
});

Deno.test("reflector: truncated, extended or tampered messages are rejected", () => {
  const req = encodeRequest(TXID);
  for (let n = 0; n < req.length; n++) assert.equal(decodeRequest(req.subarray(0, n)), null);
  assert.equal(decodeRequest(new Uint8Array([...req, 0])), null, "65 bytes");
  const edits: [string, number, number][] = [
    ["magic", 0, 0x45],
    ["magic", 3, 0x53],
    ["version", 4, 2],
    ["type", 5, 2],
    ["padding", 63, 1],
    ["padding", 18, 1],
  ];
  for (const [what, at, value] of edits) {
    const b = req.slice();
    b[at] = value;
    assert.equal(decodeRequest(b), null, `request with another ${what}`);
  }
  const resp = encodeResponse(TXID, parseIp("203.0.113.7"), 41000);
  for (let n = 0; n < resp.length; n++) assert.equal(decodeResponse(resp.subarray(0, n)), null);
  assert.equal(decodeResponse(new Uint8Array([...resp, 0])), null, "a byte more");
  const respEdits: [string, number, number][] = [
    ["magic", 1, 0],
    ["version", 4, 0],
    ["type", 5, 1],
    ["family", 18, 6],
    ["family", 18, 5],
  ];
  for (const [what, at, value] of respEdits) {
    const b = resp.slice();
    b[at] = value;
    assert.equal(decodeResponse(b), null, `response with another ${what}`);
  }
  const zeroPort = resp.slice();
  zeroPort[19] = zeroPort[20] = 0;
  assert.equal(decodeResponse(zeroPort), null, "port 0");
  assert.equal(decodeResponse(req), null, "a request is no response");
});

Deno.test("reflector core: answers with the source; drops malformed, per-IP and global floods", () => {
  const core = new ReflectorCore({ perIp: 20, total: 50 }, 0);
  const from = { hostname: "198.51.100.4", port: 5555 };
  const out = core.answer(encodeRequest(TXID), from, 0);
  assert.ok(out instanceof Uint8Array);
  assert.equal(decodeResponse(out)?.mapped, "198.51.100.4:5555");
  assert.equal(core.answer(new Uint8Array(64), from, 0), "malformed");
  assert.equal(core.answer(new Uint8Array(1500), from, 0), "malformed");
  let answered = 1;
  for (let i = 0; i < 100; i++) {
    if (core.answer(encodeRequest(TXID), from, 0) instanceof Uint8Array) answered++;
  }
  assert.equal(answered, 40, "burst 2 × 20 per source");
  assert.equal(core.answer(encodeRequest(TXID), from, 0), "rate_limit");
  assert.ok(core.answer(encodeRequest(TXID), from, 1000) instanceof Uint8Array, "refilled");
  // Many sources: the global bucket (burst 100) stops them.
  const results = Array.from(
    { length: 200 },
    (_, i) =>
      core.answer(encodeRequest(TXID), { hostname: `10.9.${i >> 8}.${i & 255}`, port: 1 }, 1000),
  );
  assert.ok(results.includes("global_limit"));
  assert.ok(results.filter((r) => r instanceof Uint8Array).length <= 100);
});

Deno.test("reflector ports: in the challenge (old length still read), and the HTTP header", () => {
  const nonce = new Uint8Array(32).fill(0xab);
  const c = encodeChallenge(nonce, [8765, 8766]);
  assert.equal(hex(c), "0101" + "ab".repeat(32) + "223d223e");
  assert.deepEqual(decodeChallenge(c), nonce);
  assert.deepEqual(challengeReflector(c), [8765, 8766]);
  const old = encodeChallenge(nonce);
  assert.deepEqual(decodeChallenge(old), nonce);
  assert.equal(challengeReflector(old), null);
  for (let n = 35; n < c.length; n++) {
    assert.equal(decodeChallenge(c.subarray(0, n)), null, `${n} bytes`);
  }
  assert.equal(decodeChallenge(new Uint8Array([...c, 0])), null);
  assert.equal(challengeReflector(encodeChallenge(nonce, [1, 65535]))?.[1], 65535);
  const zero = c.slice();
  zero[34] = zero[35] = 0;
  assert.equal(challengeReflector(zero), null, "port 0 is no reflector");
  assert.throws(() => encodeChallenge(nonce, [0, 1]), RangeError);
  assert.deepEqual(parseReflectorHeader("8765,8766"), [8765, 8766]);
  assert.deepEqual(parseReflectorHeader(" 1 , 2 "), [1, 2]);
  for (const bad of [null, "", "8765", "8765,0", "8765,70000", "a,b", "1,2,3"]) {
    assert.equal(parseReflectorHeader(bad), null, `${bad}`);
  }
});

// ---- the reflect round ----

Deno.test("reflect round: three tries 500 ms apart, answers checked by source and txid", () => {
  let n = 0;
  const random = (len: number) => new Uint8Array(len).fill(++n);
  const job = new ReflectJob(["10.211.0.254:8765", "10.211.0.254:8766"], 0, random);
  const first = job.due(0);
  assert.deepEqual(first.map((d) => d.to), ["10.211.0.254:8765", "10.211.0.254:8766"]);
  assert.deepEqual(job.due(100), [], "not before 500 ms");
  const txid1 = decodeRequest(first[0].request)!;
  const txid2 = decodeRequest(first[1].request)!;
  assert.notDeepEqual(txid1, txid2, "a txid per target");
  const answer = (txid: Uint8Array) => encodeResponse(txid, parseIp("203.0.113.7"), 41000);
  assert.equal(job.onResponse(answer(txid2), "10.211.0.254:8765", 0), false, "other's txid");
  assert.equal(job.onResponse(answer(txid1), "10.211.0.254:9999", 0), false, "other source");
  assert.equal(job.onResponse(encodeRequest(txid1), "10.211.0.254:8765", 0), false);
  assert.equal(job.onResponse(answer(txid1), "10.211.0.254:8765", 0), true);
  assert.equal(job.done(600), false);
  assert.deepEqual(job.due(REFLECT_EVERY_MS).map((d) => d.to), ["10.211.0.254:8766"]);
  assert.equal(job.due(2 * REFLECT_EVERY_MS).length, 1);
  assert.equal(job.due(REFLECT_TRIES * REFLECT_EVERY_MS).length, 0, `only ${REFLECT_TRIES} tries`);
  assert.equal(job.done(REFLECT_FOR_MS), true);
  assert.deepEqual(job.results(), [
    { target: "10.211.0.254:8765", mapped: "203.0.113.7:41000" },
    { target: "10.211.0.254:8766", mapped: null },
  ]);
  const both = new ReflectJob(["10.0.0.1:1", "10.0.0.1:2"], 0, random);
  const d = both.due(0);
  both.onResponse(answer(decodeRequest(d[0].request)!), "10.0.0.1:1", 10);
  both.onResponse(answer(decodeRequest(d[1].request)!), "10.0.0.1:2", 10);
  assert.equal(both.done(10), true, "done as soon as every target answered");
});

// ---- classification ----

Deno.test("classification: the table of docs/NAT.md", () => {
  const locals = localEndpoints("0.0.0.0:7834", ["10.210.1.2", "127.0.0.1", "fd00::2"]);
  assert.deepEqual(locals, ["10.210.1.2:7834", "127.0.0.1:7834"]);
  assert.deepEqual(localEndpoints("10.0.0.5:7834", ["10.210.1.2"]), ["10.0.0.5:7834"]);
  const r = (a: string | null, b: string | null) => [
    { target: "t:1", mapped: a },
    { target: "t:2", mapped: b },
  ];
  const cases: [string, ReturnType<typeof r>, string, string | null][] = [
    ["nothing asked", [], "unknown", null],
    ["no answer", r(null, null), "blocked", null],
    ["our own address", r("10.210.1.2:7834", "10.210.1.2:7834"), "open", "10.210.1.2:7834"],
    ["our own, one answer", r("127.0.0.1:7834", null), "open", "127.0.0.1:7834"],
    ["the same mapping", r("203.0.113.7:7834", "203.0.113.7:7834"), "cone", "203.0.113.7:7834"],
    ["another port", r("203.0.113.7:7834", "203.0.113.7:40001"), "symmetric", null],
    ["another address", r("203.0.113.7:7834", "203.0.113.8:7834"), "symmetric", null],
    ["ours, then not", r("10.210.1.2:7834", "203.0.113.7:7834"), "symmetric", null],
    ["one answer, not ours", r("203.0.113.7:7834", null), "unknown", "203.0.113.7:7834"],
    ["our address, other port", r("10.210.1.2:9", "10.210.1.2:9"), "cone", "10.210.1.2:9"],
  ];
  for (const [what, results, type, pub] of cases) {
    const got = classifyNat(locals, results);
    assert.deepEqual({ type: got.type, public: got.public }, { type, public: pub }, what);
  }
  assert.deepEqual(
    classifyNat(locals, r("203.0.113.7:1", "203.0.113.7:2")).mapped,
    ["203.0.113.7:1", "203.0.113.7:2"],
  );
});

Deno.test("verdicts: impossible when one side is symmetric and the other not open", () => {
  const table: [string, string, string][] = [
    ["cone", "cone", "trying"],
    ["open", "symmetric", "trying"],
    ["symmetric", "open", "trying"],
    ["symmetric", "cone", "impossible"],
    ["cone", "symmetric", "impossible"],
    ["symmetric", "symmetric", "impossible"],
    ["unknown", "symmetric", "impossible"],
    ["blocked", "cone", "impossible"],
    ["cone", "blocked", "impossible"],
    ["unknown", "unknown", "trying"],
  ];
  for (const [local, peer, direct] of table) {
    const v = natVerdict(local as never, peer as never, false);
    assert.equal(v.direct, direct, `${local} / ${peer}`);
  }
  assert.match(natVerdict("cone", "symmetric", false).why, /^peer is behind a symmetric NAT/);
  assert.match(natVerdict("symmetric", "cone", false).why, /this node is behind a symmetric NAT/);
  assert.equal(natVerdict("symmetric", "symmetric", true).direct, "udp", "what works, works");
});

// ---- offer v2 ----

const SALT = new Uint8Array(16).fill(0x55);

function offer(o: Partial<Offer> = {}): Offer {
  return {
    index: 7,
    salt: SALT,
    port: 7834,
    addresses: [parseIp("192.168.1.20")],
    nat: "cone",
    reflexive: { ip: parseIp("203.0.113.7"), port: 41000 },
    ...o,
  };
}

Deno.test("offer v2: the vectors of docs/DATAPLANE.md", () => {
  const cone = encodeOffer(offer());
  assert.equal(
    hex(cone),
    "0200000007" + "55".repeat(16) + "1e9a0104c0a80114" + "0204cb007107a028",
  );
  assert.deepEqual(decodeOffer(cone), offer());
  const sym = encodeOffer(offer({ nat: "symmetric", reflexive: null }));
  assert.equal(
    hex(sym),
    "0200000007" + "55".repeat(16) + "1e9a0104c0a80114" + "0300",
  );
});

Deno.test("offer v2: truncation, tampering and bounds", () => {
  const good = encodeOffer(offer());
  for (let n = 0; n < good.length; n++) {
    assert.equal(decodeOffer(good.subarray(0, n)), null, `${n} of ${good.length}`);
  }
  assert.equal(decodeOffer(new Uint8Array([...good, 0])), null, "a byte more");
  const at = 24 + 5; // the NAT type
  const edit = (i: number, v: number) => {
    const b = good.slice();
    b[i] = v;
    return decodeOffer(b);
  };
  assert.equal(edit(at, 5), null, "NAT type 5");
  assert.equal(edit(at, 255), null, "NAT type 255");
  assert.equal(edit(at + 1, 5), null, "reflexive family 5");
  assert.equal(edit(at + 1, 6), null, "family 6 with 4 address bytes");
  assert.equal(edit(at + 1, 0), null, "family 0 followed by bytes");
  assert.equal(edit(good.length - 1, 0)?.reflexive?.port, 40960, "the port is read");
  const zeroPort = good.slice();
  zeroPort[good.length - 2] = zeroPort[good.length - 1] = 0;
  assert.equal(decodeOffer(zeroPort), null, "reflexive port 0");
  assert.throws(() => encodeOffer(offer({ nat: "weird" as never })), RangeError);
  assert.throws(
    () => encodeOffer(offer({ reflexive: { ip: parseIp("10.0.0.1"), port: 0 } })),
    RangeError,
  );
  const biggest = encodeOffer(offer({
    addresses: Array.from({ length: 8 }, (_, i) => parseIp(`2001:db8::${i + 1}`)),
    reflexive: { ip: parseIp("2001:db8::ff"), port: 65535 },
  }));
  assert.equal(biggest.length, MAX_OFFER_BYTES);
  assert.equal(decodeOffer(biggest)?.addresses.length, 8);
  assert.equal(decodeOffer(new Uint8Array(MAX_OFFER_BYTES + 1)), null, "longer than any offer");
});

// ---- path: punching keeps probing ----

Deno.test("path: new candidates restart eager probing; learned ones are probed too", () => {
  const p = new PathState(0);
  p.setCandidates(["10.210.2.2:7834"], 0);
  assert.equal(p.due(0).length, 1);
  // Long after: probing has slowed down.
  const late = EAGER_FOR_MS + 1_000;
  p.due(late);
  assert.equal(p.due(late + PROBE_EVERY_MS).length, 0, "slow by now");
  assert.equal(p.due(late + SLOW_PROBE_MS).length, 1);
  // A new offer with the peer's public endpoint: at once, then every 500 ms again.
  const t = late + SLOW_PROBE_MS + 10;
  p.setCandidates(["10.210.2.2:7834", "10.211.2.1:7834"], t);
  assert.deepEqual(p.due(t).map((x) => x.to), ["10.210.2.2:7834", "10.211.2.1:7834"]);
  assert.equal(p.due(t + PROBE_EVERY_MS).length, 2);
  assert.equal(p.due(t + EAGER_FOR_MS - PROBE_EVERY_MS).length, 2, "still eager");
  // An authenticated probe from an unknown address: it becomes a candidate at once.
  const u = t + EAGER_FOR_MS + SLOW_PROBE_MS;
  p.due(u);
  assert.equal(p.learn("10.211.2.1:40000", u + 1), true);
  assert.equal(p.learn("10.211.2.1:40000", u + 1), false, "known already");
  assert.ok(p.due(u + 1).some((x) => x.to === "10.211.2.1:40000"));
  for (let i = 0; i < MAX_LEARNED + 3; i++) p.learn(`10.9.9.9:${1000 + i}`, u + 2);
  assert.equal(p.candidates.length, 2 + MAX_LEARNED, "learned ones are bounded");
  assert.ok(p.candidates.includes("10.211.2.1:7834"), "offered ones stay");
  // The reply to a probe sent to the public endpoint makes the path direct there.
  const probe = p.due(u + 10_000).find((x) => x.to === "10.211.2.1:7834")!;
  assert.ok(p.onReply(probe.id, u + 10_001));
  assert.equal(p.endpoint(u + 10_001), "10.211.2.1:7834");
  assert.equal(canonicalEndpoint("[::ffff:10.0.0.1]:5"), "10.0.0.1:5");
});
