import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { toBase32 } from "../../src/crypto/encoding.ts";
import {
  formatIp,
  type IpAddress,
  isIpInPrefix,
  normalizeFingerprint,
  parseCidr,
} from "../../src/config/validators.ts";
import {
  autoAddress,
  interfaceName,
  MAX_ADDRESS_ATTEMPTS,
  resolveAddress,
} from "../../src/vpn/address.ts";

/** The fingerprint of the 32 bytes 00 01 … 1f: the docs/VPN.md vector. */
const FP = "aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypq";

/** n distinct, valid fingerprints. */
function fingerprints(n: number, seed = "fp"): string[] {
  return Array.from(
    { length: n },
    (_, i) => toBase32(new Uint8Array(createHash("sha256").update(`${seed}${i}`).digest())),
  );
}

const text = (ip: IpAddress) => formatIp(ip);
const none = () => null;

Deno.test("autoAddress: docs/VPN.md vectors", () => {
  assert.equal(normalizeFingerprint(FP), FP);
  const at = (prefix: string, attempt = 0) =>
    text(autoAddress("office", FP, parseCidr(prefix), attempt));
  assert.equal(at("100.64.0.0/10"), "100.71.6.87");
  assert.equal(at("100.64.0.0/10", 1), "100.96.82.173");
  assert.equal(at("10.0.0.0/24"), "10.0.0.87");
  assert.equal(at("fd00:de::/64"), "fd00:de::d936:c9e8:b186:fd55");
  // The same bytes computed independently: SHA-256 of the documented input, first 4 bytes.
  const h = createHash("sha256")
    .update("den-vpn-addr-v1office\x00" + FP)
    .update(new Uint8Array([0, 0, 0, 0]))
    .digest();
  assert.equal(at("0.0.0.0/2"), `${h[0] & 0x3f}.${h[1]}.${h[2]}.${h[3]}`);
});

Deno.test("autoAddress: stable across calls and inside the prefix", () => {
  const prefixes = ["100.64.0.0/10", "10.20.30.0/24", "192.168.7.0/29", "fd12:3456::/48"];
  for (const p of prefixes) {
    const prefix = parseCidr(p);
    for (const fp of fingerprints(50)) {
      const a = autoAddress("office", fp, prefix);
      assert.equal(text(autoAddress("office", fp, parseCidr(p))), text(a));
      assert.ok(isIpInPrefix(a, prefix), `${text(a)} outside ${p}`);
      assert.equal(a.family, prefix.family);
    }
  }
});

Deno.test("autoAddress: the network name and the attempt change the address", () => {
  const prefix = parseCidr("100.64.0.0/10");
  const fps = fingerprints(100);
  const byNet = fps.filter((fp) =>
    text(autoAddress("office", fp, prefix)) !== text(autoAddress("lab", fp, prefix))
  );
  const byAttempt = fps.filter((fp) =>
    text(autoAddress("office", fp, prefix, 0)) !== text(autoAddress("office", fp, prefix, 1))
  );
  // 2^22 host values: a coincidence is possible but would not happen 3 times in 100.
  assert.ok(byNet.length >= 97 && byAttempt.length >= 97);
});

Deno.test("autoAddress: never the network or broadcast address (tiny prefixes)", () => {
  const fps = fingerprints(300);
  const seen30 = new Set<string>();
  for (const fp of fps) {
    for (let attempt = 0; attempt < 4; attempt++) {
      seen30.add(text(autoAddress("office", fp, parseCidr("10.9.8.0/30"), attempt)));
      const a29 = text(autoAddress("office", fp, parseCidr("10.9.8.8/29"), attempt));
      assert.ok(a29 !== "10.9.8.8" && a29 !== "10.9.8.15", a29);
    }
  }
  // Two of the four addresses of a /30 are forbidden; both others are used.
  assert.deepEqual([...seen30].sort(), ["10.9.8.1", "10.9.8.2"]);
  // IPv6 has no broadcast: of a /126, all but the network address.
  const seen126 = new Set(
    fps.map((fp) => text(autoAddress("office", fp, parseCidr("fd00::/126")))),
  );
  assert.deepEqual([...seen126].sort(), ["fd00::1", "fd00::2", "fd00::3"]);
});

Deno.test("autoAddress: prefixes without room for hosts are a RangeError", () => {
  for (const p of ["10.0.0.0/31", "10.0.0.1/32", "fd00::/127", "fd00::1/128"]) {
    assert.throws(
      () => autoAddress("office", FP, parseCidr(p)),
      (e: Error) => e instanceof RangeError && e.message.includes(p) && /no room/.test(e.message),
    );
  }
  const prefix = parseCidr("10.0.0.0/24");
  for (const bad of [-1, 1.5, 2 ** 32, NaN]) {
    assert.throws(() => autoAddress("office", FP, prefix, bad), RangeError);
  }
});

Deno.test("resolveAddress: auto takes the first free address, or the one it holds", () => {
  const cfg = { network: "office", prefix: "100.64.0.0/10", address: "auto" };
  const first = autoAddress("office", FP, parseCidr(cfg.prefix), 0);
  assert.deepEqual(resolveAddress(cfg, FP, none), { address: first, attempt: 0, collision: null });
  const mine = resolveAddress(cfg, FP, (ip) => text(ip) === text(first) ? FP : null);
  assert.deepEqual(mine, { address: first, attempt: 0, collision: null });
  // A parsed prefix works too.
  const parsed = resolveAddress({ ...cfg, prefix: parseCidr(cfg.prefix) }, FP, none);
  assert.equal(text(parsed.address), text(first));
});

Deno.test("resolveAddress: the lower fingerprint keeps a contested address", () => {
  const cfg = { network: "office", prefix: "100.64.0.0/10", address: "auto" };
  const [low, high] = fingerprints(2).sort();
  // high's first address is held by low: high moves on.
  const highFirst = autoAddress("office", high, parseCidr(cfg.prefix), 0);
  const moved = resolveAddress(cfg, high, (ip) => text(ip) === text(highFirst) ? low : null);
  assert.equal(moved.attempt, 1);
  assert.equal(moved.collision, null);
  assert.notEqual(text(moved.address), text(highFirst));
  // low's first address is held by high: low keeps it and names high.
  const lowFirst = autoAddress("office", low, parseCidr(cfg.prefix), 0);
  const kept = resolveAddress(cfg, low, (ip) => text(ip) === text(lowFirst) ? high : null);
  assert.deepEqual(kept, { address: lowFirst, attempt: 0, collision: high });
});

Deno.test("resolveAddress: both sides of a real collision agree (a /30)", () => {
  const cfg = { network: "office", prefix: "10.9.8.0/30", address: "auto" };
  const prefix = parseCidr(cfg.prefix);
  const fps = fingerprints(40);
  let pairs = 0;
  for (let i = 0; i < fps.length; i++) {
    for (let j = i + 1; j < fps.length; j++) {
      const [low, high] = [fps[i], fps[j]].sort();
      const a = text(autoAddress("office", low, prefix));
      if (a !== text(autoAddress("office", high, prefix))) continue;
      pairs++;
      // Each sees the other on the contested address.
      const lowSide = resolveAddress(cfg, low, (ip) => text(ip) === a ? high : null);
      const highSide = resolveAddress(cfg, high, (ip) => text(ip) === a ? low : null);
      assert.equal(text(lowSide.address), a);
      assert.equal(lowSide.collision, high);
      assert.notEqual(text(highSide.address), a);
      assert.equal(highSide.collision, null);
      assert.ok(highSide.attempt > 0);
    }
  }
  assert.ok(pairs > 100, `only ${pairs} colliding pairs`);
});

Deno.test("resolveAddress: a small network converges to distinct addresses", () => {
  const cfg = { network: "office", prefix: "10.1.2.0/28", address: "auto" };
  const fps = fingerprints(12, "mesh");
  const held = new Map<string, string>(); // fingerprint → address text
  for (let round = 0; round < 20; round++) {
    let changed = false;
    for (const fp of fps) {
      const taken = (ip: IpAddress) => {
        const holders = [...held].filter(([f, a]) => f !== fp && a === text(ip)).map(([f]) => f);
        return holders.sort()[0] ?? null;
      };
      const got = text(resolveAddress(cfg, fp, taken).address);
      if (held.get(fp) !== got) changed = true;
      held.set(fp, got);
    }
    if (!changed) break;
  }
  assert.equal(new Set(held.values()).size, fps.length, "addresses are distinct");
  for (const a of held.values()) assert.ok(a !== "10.1.2.0" && a !== "10.1.2.15");
});

Deno.test("resolveAddress: a full prefix is an error, not a loop", () => {
  const cfg = { network: "office", prefix: "10.9.8.0/30", address: "auto" };
  // Every address tried is held by a lower fingerprint.
  const [low, high] = ["a".repeat(52), "z".repeat(51) + "q"];
  assert.throws(
    () => resolveAddress(cfg, high, () => low),
    (e: Error) =>
      e instanceof RangeError && e.message.includes("10.9.8.0/30") &&
      e.message.includes(String(MAX_ADDRESS_ATTEMPTS)),
  );
});

Deno.test("resolveAddress: a fixed address is kept; another holder is reported", () => {
  const cfg = { network: "office", prefix: "10.0.0.0/24", address: "10.0.0.7" };
  const [other] = fingerprints(1);
  assert.deepEqual(resolveAddress(cfg, FP, none), {
    address: { family: 4, bytes: new Uint8Array([10, 0, 0, 7]) },
    attempt: 0,
    collision: null,
  });
  assert.equal(resolveAddress(cfg, FP, () => FP).collision, null);
  const hit = resolveAddress(cfg, FP, () => other);
  assert.equal(text(hit.address), "10.0.0.7");
  assert.equal(hit.collision, other);
  assert.throws(() => resolveAddress({ ...cfg, address: "10.0.1.7" }, FP, none), RangeError);
});

Deno.test("interfaceName: den- plus the network name, at most 15 characters", () => {
  assert.equal(interfaceName("office"), "den-office");
  assert.equal(interfaceName("abcdefghijk"), "den-abcdefghijk");
  assert.equal(interfaceName("abcdefghijklmno"), "den-abcdefghijk");
  for (let n = 1; n <= 15; n++) assert.ok(interfaceName("a".repeat(n)).length <= 15);
});
