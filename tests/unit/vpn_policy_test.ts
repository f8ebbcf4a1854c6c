import assert from "node:assert/strict";
import type { AllowRule } from "../../src/config/schema.ts";
import { formatCidr, parseCidr, parseIp } from "../../src/config/validators.ts";
import {
  announcePolicy,
  filterAnnouncement,
  hostPrefix,
  isPrefixWithin,
} from "../../src/vpn/policy.ts";

const ALICE = { name: "alice", fingerprint: "a".repeat(51) + "q" };
const BOB = { name: "bob", fingerprint: "b".repeat(51) + "q" };
const ALICE_IP = parseIp("100.64.0.5");
const c = (s: string) => parseCidr(s);

Deno.test("policy: without a rule a peer may announce only its own address", () => {
  const check = announcePolicy([], ALICE, ALICE_IP);
  assert.equal(check(c("100.64.0.5/32")), null);
  for (const p of ["100.64.0.6/32", "100.64.0.0/10", "100.64.0.4/30", "0.0.0.0/0", "10.0.0.0/8"]) {
    const reason = check(c(p));
    assert.ok(reason, `${p} was allowed`);
    assert.ok(reason.includes(p), reason);
    assert.ok(reason.includes("100.64.0.5/32"), reason);
    assert.ok(reason.includes("alice"), reason);
  }
  // An IPv6 own address allows its /128 only.
  const v6 = announcePolicy([], ALICE, parseIp("fd00::5"));
  assert.equal(v6(c("fd00::5/128")), null);
  assert.ok(v6(c("fd00::4/127")));
  assert.ok(v6(c("100.64.0.5/32")));
  // No known address: nothing.
  const unknown = announcePolicy([], ALICE, null);
  assert.match(unknown(c("100.64.0.5/32"))!, /100\.64\.0\.5\/32 .*none known/);
});

Deno.test("policy: a rule by name allows prefixes equal to or inside its own", () => {
  const allow: AllowRule[] = [
    { peer: "alice", prefixes: ["10.1.0.0/16", "fd10::/48"] },
    { peer: "bob", prefixes: ["0.0.0.0/0"] },
  ];
  const check = announcePolicy(allow, ALICE, ALICE_IP);
  for (
    const p of ["10.1.0.0/16", "10.1.2.0/24", "10.1.255.255/32", "fd10::/48", "fd10:0:0:1::/64"]
  ) {
    assert.equal(check(c(p)), null, p);
  }
  assert.equal(check(c("100.64.0.5/32")), null); // own address still allowed
  for (const p of ["10.0.0.0/8", "10.2.0.0/16", "10.0.0.0/15", "0.0.0.0/0", "fd11::/48", "::/0"]) {
    const reason = check(c(p));
    assert.ok(reason, `${p} was allowed`);
    assert.ok(reason.startsWith(p), reason);
    assert.ok(reason.includes("10.1.0.0/16, fd10::/48"), reason);
  }
  // Bob's rule does not leak to Alice, and Bob gets everything IPv4.
  const bob = announcePolicy(allow, BOB, null);
  assert.equal(bob(c("0.0.0.0/0")), null);
  assert.equal(bob(c("192.168.0.0/16")), null);
  assert.ok(bob(c("fd10::/48")));
});

Deno.test("policy: a rule by fingerprint applies, and rules for both add up", () => {
  const byFp: AllowRule[] = [{ peer: ALICE.fingerprint, prefixes: ["192.168.1.0/24"] }];
  assert.equal(announcePolicy(byFp, ALICE, ALICE_IP)(c("192.168.1.128/25")), null);
  // Another peer (other name, other fingerprint) is not covered by it.
  const mallory = { name: "mallory", fingerprint: "m".repeat(51) + "q" };
  assert.ok(announcePolicy(byFp, mallory, null)(c("192.168.1.0/24")));
  const both: AllowRule[] = [...byFp, { peer: "alice", prefixes: ["10.9.0.0/16"] }];
  const check = announcePolicy(both, ALICE, ALICE_IP);
  assert.equal(check(c("192.168.1.0/24")), null);
  assert.equal(check(c("10.9.1.0/24")), null);
  assert.ok(check(c("10.8.0.0/16")));
});

Deno.test("policy: a rule with no prefixes allows only the own address", () => {
  const check = announcePolicy([{ peer: "alice", prefixes: [] }], ALICE, ALICE_IP);
  assert.equal(check(c("100.64.0.5/32")), null);
  assert.match(check(c("10.0.0.0/8"))!, /^10\.0\.0\.0\/8 .*no prefixes/);
});

Deno.test("filterAnnouncement: accepted and rejected, in order, with reasons", () => {
  const allow: AllowRule[] = [{ peer: "alice", prefixes: ["10.1.0.0/16"] }];
  const prefixes = ["10.1.1.0/24", "10.2.0.0/16", "100.64.0.5/32", "0.0.0.0/0"].map(c);
  const out = filterAnnouncement(allow, ALICE, ALICE_IP, prefixes);
  assert.deepEqual(out.accepted.map(formatCidr), ["10.1.1.0/24", "100.64.0.5/32"]);
  assert.deepEqual(out.rejected.map((r) => formatCidr(r.prefix)), ["10.2.0.0/16", "0.0.0.0/0"]);
  for (const r of out.rejected) assert.ok(r.reason.startsWith(formatCidr(r.prefix)));
  assert.deepEqual(filterAnnouncement(allow, ALICE, ALICE_IP, []), { accepted: [], rejected: [] });
});

Deno.test("isPrefixWithin and hostPrefix", () => {
  assert.ok(isPrefixWithin(c("10.1.0.0/16"), c("10.0.0.0/8")));
  assert.ok(isPrefixWithin(c("10.0.0.0/8"), c("10.0.0.0/8")));
  assert.ok(!isPrefixWithin(c("10.0.0.0/8"), c("10.0.0.0/16")));
  assert.ok(!isPrefixWithin(c("::/0"), c("0.0.0.0/0")));
  assert.ok(!isPrefixWithin(c("0.0.0.0/0"), c("::/0")));
  assert.equal(formatCidr(hostPrefix(parseIp("10.0.0.1"))), "10.0.0.1/32");
  assert.equal(formatCidr(hostPrefix(parseIp("fd00::1"))), "fd00::1/128");
});
