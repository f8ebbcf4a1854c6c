import assert from "node:assert/strict";
import {
  CLASS_IN,
  decodeMessage,
  type DnsMessage,
  encodeMessage,
  FLAGS_RESPONSE,
  MAX_MESSAGE,
  RR_TYPE,
} from "../../src/discovery/mdns_codec.ts";
import {
  asksForDen,
  hintedTeams,
  instanceLabel,
  MAX_HINTS,
  parseAdverts,
  query,
  response,
  teamHint,
} from "../../src/discovery/mdns_records.ts";
import { mdnsPlan, pickInterfaces, queryDelay } from "../../src/discovery/mdns_policy.ts";
import { parseConfig } from "../../src/config/load.ts";
import { ConfigError, mdnsEnabled } from "../../src/config/schema.ts";

const FP = "f476wb6tiiq7db37searngbb7w7pa6ezcgxjywav7njysunq7l2q";
const FP2 = "aaaabbbbccccddddeeeeffffgggghhhhiiiijjjjkkkkllllmmmq";
const TEAM = "0f".repeat(8) + "1e".repeat(8) + "2d".repeat(8) + "3c".repeat(8);
const OTHER_TEAM = "ab".repeat(32);
/** docs/DISCOVERY.md's test vector (computed independently with Python's hmac). */
const HINT = "b0ffdeee4403ce4c";

const enc = new TextEncoder();
const hex = (s: string) =>
  Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!, (b) => parseInt(b, 16));
const label = (s: string) => [s.length, ...enc.encode(s)];
const u16 = (n: number) => [n >> 8, n & 0xff];

/**
 * A response as a compressing responder writes it (the layout avahi and Apple's mDNSResponder
 * use): PTR, SRV, TXT and A, names compressed with pointers back into earlier records.
 */
function capturedResponse(): Uint8Array {
  const inst = `den-${FP.slice(0, 12)}`;
  const txt = [...label("v=1"), ...label(`fp=${FP}`), ...label(`t=${HINT}`)];
  const bytes = [
    ...hex("0000 8400 0000 0004 0000 0000"),
    // 12: _den._udp.local PTR → inst + pointer to 12
    ...label("_den"), // 12
    ...label("_udp"), // 17
    ...label("local"), // 22
    0,
    ...u16(RR_TYPE.PTR),
    ...u16(1),
    ...hex("00001194"),
    ...u16(1 + inst.length + 2),
    ...label(inst), // 39: the instance name
    ...hex("c00c"),
    // SRV inst → 0 0 7834 inst.local (pointer to "local" at 22)
    ...hex("c027"),
    ...u16(RR_TYPE.SRV),
    ...hex("8001 00000078"),
    ...u16(6 + 1 + inst.length + 2),
    ...hex("0000 0000"),
    ...u16(7834),
    ...label(inst), // 76: the host name
    ...hex("c016"),
    // TXT inst
    ...hex("c027"),
    ...u16(RR_TYPE.TXT),
    ...hex("8001 00001194"),
    ...u16(txt.length),
    ...txt,
    // A inst.local → 192.168.1.7
    ...hex("c04c"),
    ...u16(RR_TYPE.A),
    ...hex("8001 00000078 0004 c0a80107"),
  ];
  return Uint8Array.from(bytes);
}

Deno.test("mdns codec: every record type and a question survive a round trip", () => {
  const m: DnsMessage = {
    id: 0x1234,
    flags: FLAGS_RESPONSE,
    questions: [{
      name: "_den._udp.local",
      type: RR_TYPE.PTR,
      class: CLASS_IN,
      unicastResponse: true,
    }],
    answers: [
      {
        name: "_den._udp.local",
        class: 1,
        cacheFlush: false,
        ttl: 4500,
        data: { type: 12, target: "x._den._udp.local" },
      },
      {
        name: "x._den._udp.local",
        class: 1,
        cacheFlush: true,
        ttl: 120,
        data: { type: 33, priority: 1, weight: 2, port: 65535, target: "x.local" },
      },
      {
        name: "x._den._udp.local",
        class: 1,
        cacheFlush: true,
        ttl: 0xffffffff,
        data: { type: 16, strings: [enc.encode("v=1"), new Uint8Array(255)] },
      },
    ],
    authorities: [],
    additionals: [
      {
        name: "x.local",
        class: 1,
        cacheFlush: true,
        ttl: 120,
        data: { type: 1, address: "10.0.0.1" },
      },
      {
        name: "x.local",
        class: 1,
        cacheFlush: true,
        ttl: 120,
        data: { type: 28, address: "fe80::1" },
      },
      {
        name: "we\\.ird.local",
        class: 1,
        cacheFlush: false,
        ttl: 1,
        data: { type: 12, target: "a.b" },
      },
    ],
  };
  const d = decodeMessage(encodeMessage(m));
  assert.ok(d.ok);
  assert.deepEqual(d.message, m);
  assert.equal(d.skipped, 0);
});

Deno.test("mdns codec: a compressed response as responders send it decodes to den's advert", () => {
  const d = decodeMessage(capturedResponse());
  assert.ok(d.ok, JSON.stringify(!d.ok && d.error));
  const inst = `${instanceLabel(FP)}._den._udp.local`;
  assert.deepEqual(d.message.answers.map((r) => [r.name, r.data.type]), [
    ["_den._udp.local", RR_TYPE.PTR],
    [inst, RR_TYPE.SRV],
    [inst, RR_TYPE.TXT],
    [`${instanceLabel(FP)}.local`, RR_TYPE.A],
  ]);
  assert.deepEqual(parseAdverts(d.message), {
    adverts: [{ fingerprint: FP, port: 7834, hints: [HINT], addresses: ["192.168.1.7"], ttl: 120 }],
    problems: [],
  });
});

Deno.test("mdns codec: truncation at every offset is an error result, never a throw", () => {
  const full = capturedResponse();
  for (let n = 0; n < full.length; n++) {
    const d = decodeMessage(full.subarray(0, n));
    assert.equal(d.ok, false, `decoded a message cut to ${n} bytes`);
  }
  // Flipped bytes anywhere: any result is fine, an exception is not.
  for (let i = 0; i < full.length; i++) {
    for (const v of [0x00, 0x3f, 0x40, 0xc0, 0xff]) {
      const b = full.slice();
      b[i] = v;
      const d = decodeMessage(b);
      if (d.ok) parseAdverts(d.message);
    }
  }
});

function header(qd: number, an: number, ns = 0, ar = 0): number[] {
  return [0, 0, 0x84, 0, ...u16(qd), ...u16(an), ...u16(ns), ...u16(ar)];
}

function errorCode(bytes: number[] | Uint8Array): string {
  const d = decodeMessage(Uint8Array.from(bytes));
  assert.equal(d.ok, false);
  return d.ok ? "" : d.error.code;
}

Deno.test("mdns codec: pointer loops, forward pointers and long chains are rejected", () => {
  // Question name at 12: label "abc", then a pointer back to 12 — a loop.
  assert.equal(errorCode([...header(1, 0), 3, 97, 98, 99, 0xc0, 12, 0, 1, 0, 1]), "bad_pointer");
  // A pointer to itself.
  assert.equal(errorCode([...header(1, 0), 0xc0, 12, 0, 1, 0, 1]), "bad_pointer");
  // A pointer forward, to a valid name after it.
  assert.equal(errorCode([...header(1, 0), 0xc0, 18, 0, 1, 0, 1, 0]), "bad_pointer");
  // A chain of pointers, each one back to the previous, hidden in a skipped record's rdata.
  const chain = (jumps: number) => {
    const rd: number[] = [0];
    const base = 12 + 11; // after header: root name, type, class, ttl, rdlength
    for (let i = 1; i < jumps; i++) rd.push(0xc0, i === 1 ? base : base + 1 + 2 * (i - 2));
    const last = base + 1 + 2 * (jumps - 2);
    return [
      ...header(0, 2),
      0,
      ...u16(99),
      ...u16(1),
      0,
      0,
      0,
      1,
      ...u16(rd.length),
      ...rd,
      0xc0,
      last,
      ...u16(RR_TYPE.PTR),
      ...u16(1),
      0,
      0,
      0,
      1,
      ...u16(2),
      0xc0,
      base,
    ];
  };
  const ok = decodeMessage(Uint8Array.from(chain(32)));
  assert.ok(ok.ok, JSON.stringify(!ok.ok && ok.error));
  assert.equal(ok.skipped, 1);
  assert.equal(errorCode(chain(33)), "bad_pointer");
});

Deno.test("mdns codec: names over 255 bytes, labels over 63 and bad label types are rejected", () => {
  const long: number[] = [];
  for (let i = 0; i < 5; i++) long.push(...label("x".repeat(60)));
  assert.equal(errorCode([...header(1, 0), ...long, 0, 0, 1, 0, 1]), "bad_name");
  assert.equal(
    errorCode([...header(1, 0), 64, ...new Array(64).fill(97), 0, 0, 1, 0, 1]),
    "bad_name",
  );
  assert.equal(errorCode([...header(1, 0), 0x80, 1, 0, 1, 0, 1]), "bad_name");
  assert.throws(
    () =>
      encodeMessage({ ...query(), questions: [{ ...query().questions[0], name: "x".repeat(64) }] }),
    RangeError,
  );
});

Deno.test("mdns codec: huge counts and sizes are refused before anything is allocated", () => {
  assert.equal(errorCode(header(0, 0xffff, 0xffff, 0xffff)), "too_many_records");
  assert.equal(errorCode(header(0xffff, 0)), "too_many_records");
  assert.equal(errorCode(header(60, 0)), "truncated", "60 questions cannot fit in 12 bytes");
  assert.equal(errorCode(new Uint8Array(MAX_MESSAGE + 1)), "too_large");
  // rdlength past the end, A record of the wrong size, TXT string overrunning its rdata.
  const rr = (type: number, rd: number[], len = rd.length) => [
    ...header(0, 1),
    0,
    ...u16(type),
    ...u16(1),
    0,
    0,
    0,
    1,
    ...u16(len),
    ...rd,
  ];
  assert.equal(errorCode(rr(RR_TYPE.TXT, [1, 2], 200)), "truncated");
  assert.equal(errorCode(rr(RR_TYPE.A, [1, 2, 3])), "bad_rdata");
  assert.equal(errorCode(rr(RR_TYPE.TXT, [5, 97])), "bad_rdata");
  assert.equal(errorCode(rr(RR_TYPE.SRV, [0, 0, 0, 0, 0x1e, 0x9a, 3, 97])), "truncated");
  // A name inside PTR rdata must end inside it.
  assert.equal(errorCode(rr(RR_TYPE.PTR, [1, 97, 0], 1)), "bad_rdata");
});

Deno.test("mdns records: our announcement parses back to exactly what was announced", () => {
  const teams = Array.from({ length: 20 }, (_, i) => i.toString(16).padStart(64, "0"));
  const m = response({ fingerprint: FP, port: 7834, teams, addresses: ["10.1.2.3", "fd00::7"] });
  const wire = encodeMessage(m);
  const d = decodeMessage(wire);
  assert.ok(d.ok);
  const { adverts, problems } = parseAdverts(d.message);
  assert.deepEqual(problems, []);
  assert.equal(adverts.length, 1);
  const a = adverts[0];
  assert.equal(a.fingerprint, FP);
  assert.equal(a.port, 7834);
  assert.deepEqual(a.addresses, ["10.1.2.3", "fd00::7"]);
  assert.equal(a.hints.length, MAX_HINTS, "at most 16 hints, however many teams");
  assert.deepEqual(a.hints, teams.slice(0, MAX_HINTS).map((t) => teamHint(t, FP)));
  const txt = m.answers.find((r) => r.data.type === RR_TYPE.TXT)!;
  assert.ok(txt.data.type === RR_TYPE.TXT && txt.data.strings.every((s) => s.length <= 255));
  // The query and our own check of it.
  const q = decodeMessage(encodeMessage(query()));
  assert.ok(q.ok && asksForDen(q.message));
  assert.ok(!asksForDen(d.message), "a response is not a query");
  assert.deepEqual(parseAdverts(q.message).adverts, [], "a query carries no adverts");
});

Deno.test("mdns records: inconsistent or invalid den records are reported, not accepted", () => {
  const base = response({ fingerprint: FP, port: 7834, teams: [], addresses: [] });
  const withTxt = (strings: string[]): DnsMessage => ({
    ...base,
    answers: base.answers.map((r) =>
      r.data.type === RR_TYPE.TXT
        ? { ...r, data: { type: 16, strings: strings.map((s) => enc.encode(s)) } }
        : r
    ),
  });
  const problems = (m: DnsMessage) => {
    const d = decodeMessage(encodeMessage(m));
    assert.ok(d.ok);
    return parseAdverts(d.message).problems;
  };
  assert.deepEqual(problems(withTxt(["v=2", `fp=${FP}`])), ["bad_version"]);
  assert.deepEqual(problems(withTxt(["v=1", "fp=nope"])), ["bad_fingerprint"]);
  assert.deepEqual(
    problems(withTxt(["v=1", `fp=${FP2}`])),
    ["name_mismatch"],
    "fp must match the instance name",
  );
  assert.deepEqual(problems(withTxt(["v=1", `fp=${FP}`, "t=zz"])), ["bad_hints"]);
  const port0: DnsMessage = {
    ...base,
    answers: base.answers.map((r) =>
      r.data.type === RR_TYPE.SRV ? { ...r, data: { ...r.data, port: 0 } } : r
    ),
  };
  assert.deepEqual(problems(port0), ["bad_port"]);
  assert.deepEqual(problems({ ...base, answers: base.answers.slice(0, 1) }), ["no_srv"]);
});

Deno.test("mdns team hints: the documented vector; only members can check; differ per node", () => {
  assert.equal(teamHint(TEAM, FP), HINT);
  const hints = [teamHint(TEAM, FP)];
  assert.deepEqual(hintedTeams(hints, FP, [OTHER_TEAM, TEAM]), [TEAM], "a member recognises it");
  assert.deepEqual(hintedTeams(hints, FP, [OTHER_TEAM]), [], "a non-member cannot");
  assert.deepEqual(hintedTeams(hints, FP2, [TEAM]), [], "bound to the announcing fingerprint");
  assert.notEqual(teamHint(TEAM, FP2), HINT, "two members of one team announce unlinkable hints");
  assert.match(teamHint(OTHER_TEAM, FP), /^[0-9a-f]{16}$/);
  assert.throws(() => teamHint("not-a-team", FP), RangeError);
});

Deno.test("mdns policy: off on loopback and by config; which interfaces; query backoff", () => {
  assert.deepEqual(mdnsPlan(true, "127.0.0.1:7834"), {
    on: false,
    why: "the peer listener is on loopback",
  });
  assert.deepEqual(mdnsPlan(true, "[::1]:7834"), {
    on: false,
    why: "the peer listener is on loopback",
  });
  assert.equal(mdnsPlan(false, "0.0.0.0:7834").on, false);
  assert.deepEqual(mdnsPlan(true, "0.0.0.0:7834"), { on: true, port: 7834, only: null });
  assert.deepEqual(mdnsPlan(true, "10.0.0.5:9000"), { on: true, port: 9000, only: "10.0.0.5" });
  assert.equal(mdnsPlan(true, "[fd00::1]:7834").on, false);
  const ifs = [
    { name: "lo", family: "IPv4", address: "127.0.0.1" },
    { name: "eth0", family: "IPv4", address: "10.0.0.5" },
    { name: "eth0", family: "IPv4", address: "10.0.0.6" },
    { name: "eth0", family: "IPv6", address: "fe80::1" },
    { name: "den-office", family: "IPv4", address: "100.64.0.9" },
    { name: "wlan0", family: "IPv4", address: "192.168.1.7" },
  ];
  assert.deepEqual(pickInterfaces(ifs, null), [
    { name: "eth0", address: "10.0.0.5" },
    { name: "wlan0", address: "192.168.1.7" },
  ]);
  assert.deepEqual(pickInterfaces(ifs, "10.0.0.6"), [{ name: "eth0", address: "10.0.0.6" }]);
  assert.deepEqual([0, 1, 2, 3, 5, 6, 7, 100].map(queryDelay), [
    1000,
    2000,
    4000,
    8000,
    32000,
    60000,
    60000,
    60000,
  ]);
});

Deno.test("config: [discovery] mdns defaults to on, takes a boolean, and names bad values", () => {
  const node = '[node]\nname = "a"\n';
  assert.equal(mdnsEnabled(parseConfig(node, "config.toml")), true);
  assert.equal(
    mdnsEnabled(parseConfig(`${node}[discovery]\nmdns = false\n`, "config.toml")),
    false,
  );
  assert.throws(
    () => parseConfig(`${node}[discovery]\nmdns = "no"\n`, "config.toml"),
    (e) =>
      e instanceof ConfigError &&
      /discovery\.mdns: found a string "no", allowed: true or false/.test(e.message),
  );
  assert.throws(
    () => parseConfig(`${node}[discovery]\nmdsn = true\n`, "config.toml"),
    (e) => e instanceof ConfigError && /did you mean "mdns"/.test(e.message),
  );
});

Deno.test("docs/DISCOVERY.md: the hint test vector is the one the code computes", async () => {
  const doc = await Deno.readTextFile(new URL("../../docs/DISCOVERY.md", import.meta.url));
  const row = doc.split("\n").find((l) => l.includes(TEAM));
  assert.ok(row, "the doc lists the vector's team id");
  assert.ok(row.includes(FP) && row.includes(teamHint(TEAM, FP)), row);
});
