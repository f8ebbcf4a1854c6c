import assert from "node:assert/strict";
import {
  formatCidr,
  formatIp,
  isHostname,
  isIpInPrefix,
  maskBytes,
  normalizeFingerprint,
  parseCidr,
  parseHostPort,
  parseIp,
  parseRelayUrl,
  ValueError,
} from "../../src/config/validators.ts";

/** The reason a validator gives, or fails the test if it accepts `s`. */
function reason(fn: (s: string) => unknown, s: string): string {
  try {
    fn(s);
  } catch (e) {
    assert.ok(e instanceof ValueError, `${s}: expected ValueError, got ${e}`);
    return e.message;
  }
  assert.fail(`${JSON.stringify(s)} was accepted`);
}

Deno.test("parseHostPort: IPv4, [IPv6] and host names with a port", () => {
  assert.deepEqual(parseHostPort("0.0.0.0:7834"), { host: "0.0.0.0", port: 7834 });
  assert.deepEqual(parseHostPort("[::1]:9000"), { host: "::1", port: 9000 });
  assert.deepEqual(parseHostPort("[2001:db8::7]:1"), { host: "2001:db8::7", port: 1 });
  assert.deepEqual(parseHostPort("relay.example.org:65535"), {
    host: "relay.example.org",
    port: 65535,
  });
  assert.deepEqual(parseHostPort("localhost:80"), { host: "localhost", port: 80 });
});

Deno.test("parseHostPort: says what is wrong", () => {
  assert.equal(reason(parseHostPort, "localhost"), "a string without a port");
  assert.equal(reason(parseHostPort, "[::1]"), "a string without a port");
  assert.equal(reason(parseHostPort, "1.2.3.4:99999"), "port 99999 is out of range");
  assert.equal(reason(parseHostPort, "1.2.3.4:0"), "port 0 is out of range");
  assert.equal(reason(parseHostPort, "1.2.3.4:http"), 'port "http" is not a number');
  assert.equal(reason(parseHostPort, "1.2.3.4:"), "an empty port");
  assert.match(reason(parseHostPort, "::1:7834"), /IPv6 address without brackets/);
  assert.match(reason(parseHostPort, ":7834"), /an empty host/);
  assert.match(reason(parseHostPort, "1.2.3.256:1"), /invalid IPv4 address: 256 is greater/);
  assert.match(reason(parseHostPort, "[1.2.3.4]:1"), /not an IPv6 address/);
  assert.match(reason(parseHostPort, "[::1:1"), /without a closing/);
  assert.match(reason(parseHostPort, "bad_host:1"), /neither an IP address nor a host name/);
  assert.match(reason(parseHostPort, "-a.example:1"), /neither/);
});

Deno.test("parseIp: IPv4 dotted quads, no leading zeros", () => {
  assert.deepEqual(parseIp("10.1.2.3"), { family: 4, bytes: new Uint8Array([10, 1, 2, 3]) });
  assert.deepEqual(parseIp("0.0.0.0").bytes, new Uint8Array(4));
  assert.match(reason(parseIp, "010.1.2.3"), /leading zero/);
  assert.match(reason(parseIp, "1.2.3"), /4 numbers/);
  assert.match(reason(parseIp, "1.2.3.4.5"), /4 numbers/);
  assert.match(reason(parseIp, "1..3.4"), /not a number/);
  assert.match(reason(parseIp, "example.org"), /not an IP address/);
});

Deno.test("parseIp: IPv6 with :: compression and embedded IPv4", () => {
  const hex = (s: string) => Array.from(parseIp(s).bytes, (b) => b.toString(16).padStart(2, "0"));
  assert.equal(hex("::").join(""), "0".repeat(32));
  assert.equal(hex("::1").join(""), "0".repeat(31) + "1");
  assert.equal(hex("1::").join(""), "0001" + "0".repeat(28));
  assert.equal(hex("2001:DB8::8:800:200C:417A").join(""), "20010db80000000000080800200c417a");
  assert.equal(hex("1:2:3:4:5:6:7:8").join(""), "00010002000300040005000600070008");
  assert.equal(hex("1:2:3:4:5:6:7::").join(""), "00010002000300040005000600070000");
  assert.equal(hex("::ffff:192.0.2.1").join(""), "00000000000000000000ffffc0000201");
  assert.equal(parseIp("fe80::1").family, 6);
  assert.match(reason(parseIp, "1::2::3"), /more than one '::'/);
  assert.match(reason(parseIp, "1:2:3:4:5:6:7:8:9"), /8 groups/);
  assert.match(reason(parseIp, "1:2:3:4:5:6:7"), /8 groups/);
  assert.match(reason(parseIp, "1:2:3:4:5:6:7:8::"), /8 groups/);
  assert.match(reason(parseIp, ":1::"), /stray ':'/);
  assert.match(reason(parseIp, "12345::"), /1-4 hex digits/);
  assert.match(reason(parseIp, "fe80::1%eth0"), /zone id/);
  assert.match(reason(parseIp, "::1.2.3.4:5"), /hex digits/);
});

Deno.test("formatIp: RFC 5952 canonical text", () => {
  const canon = (s: string) => formatIp(parseIp(s));
  assert.equal(canon("2001:0DB8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
  assert.equal(canon("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1"); // one zero group stays
  assert.equal(canon("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1"); // longest run wins
  assert.equal(canon("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1"); // first of equal runs
  assert.equal(canon("::"), "::");
  assert.equal(canon("::ffff:10.0.0.1"), "::ffff:10.0.0.1");
  assert.equal(canon("192.168.0.1"), "192.168.0.1");
});

Deno.test("parseCidr: host bits must be zero", () => {
  const c = parseCidr("100.64.0.0/10");
  assert.equal(c.family, 4);
  assert.equal(c.bits, 10);
  assert.deepEqual(c.address, new Uint8Array([100, 64, 0, 0]));
  assert.equal(formatCidr(parseCidr("fd00:0::/8")), "fd00::/8");
  assert.equal(formatCidr(parseCidr("0.0.0.0/0")), "0.0.0.0/0");
  assert.equal(formatCidr(parseCidr("::/0")), "::/0");
  assert.equal(formatCidr(parseCidr("10.1.2.3/32")), "10.1.2.3/32");
  assert.equal(
    reason(parseCidr, "10.0.0.1/24"),
    "host bits are set; the prefix is 10.0.0.0/24",
  );
  assert.equal(reason(parseCidr, "fd00::1/64"), "host bits are set; the prefix is fd00::/64");
  assert.match(reason(parseCidr, "10.0.0.0"), /no \/BITS/);
  assert.match(reason(parseCidr, "10.0.0.0/33"), /"33" is not a number 0-32/);
  assert.match(reason(parseCidr, "::/129"), /0-128/);
  assert.match(reason(parseCidr, "10.0.0.0/08"), /not a number/);
  assert.match(reason(parseCidr, "10.0.0.0/-1"), /not a number/);
  assert.match(reason(parseCidr, "10.0.0.0/8/8"), /not a number/);
  const loose = parseCidr("10.0.0.1/24", { allowHostBits: true });
  assert.deepEqual(loose.address, new Uint8Array([10, 0, 0, 1]));
});

Deno.test("isIpInPrefix and maskBytes", () => {
  const p = parseCidr("100.64.0.0/10");
  assert.equal(isIpInPrefix(parseIp("100.64.0.1"), p), true);
  assert.equal(isIpInPrefix(parseIp("100.127.255.255"), p), true);
  assert.equal(isIpInPrefix(parseIp("100.128.0.0"), p), false);
  assert.equal(isIpInPrefix(parseIp("::ffff:100.64.0.1"), p), false, "families never mix");
  assert.equal(isIpInPrefix(parseIp("fd00::5"), parseCidr("fd00::/8")), true);
  assert.equal(isIpInPrefix(parseIp("fe00::5"), parseCidr("fd00::/8")), false);
  assert.equal(isIpInPrefix(parseIp("8.8.8.8"), parseCidr("0.0.0.0/0")), true);
  assert.deepEqual(
    maskBytes(new Uint8Array([255, 255, 255, 255]), 19),
    new Uint8Array([255, 255, 224, 0]),
  );
});

Deno.test("isHostname", () => {
  assert.equal(isHostname("a"), true);
  assert.equal(isHostname("relay-1.example.org"), true);
  assert.equal(isHostname("a-.example"), false);
  assert.equal(isHostname("a..b"), false);
  assert.equal(isHostname("x".repeat(64)), false);
  assert.equal(isHostname(""), false);
});

Deno.test("normalizeFingerprint: separators dropped, lowercased, 52 base32 characters", () => {
  const fp = "6ymk4ni6fnaxgltrq3xk3mtz374ehsbsctgqibi5q36sfnaeq3kq"; // docs/KEYSTORE.md
  assert.equal(fp.length, 52);
  assert.equal(normalizeFingerprint(fp.toUpperCase()), fp);
  const grouped = fp.match(/.{1,4}/g)!.join(" ");
  assert.equal(normalizeFingerprint(grouped), fp);
  assert.equal(normalizeFingerprint(fp.match(/.{1,4}/g)!.join("-")), fp);
  assert.equal(normalizeFingerprint(fp.match(/.{1,2}/g)!.join(":")), fp);
  assert.equal(reason(normalizeFingerprint, fp.slice(1)), "51 base32 characters, not 52");
  assert.equal(reason(normalizeFingerprint, fp.slice(1) + "1"), 'contains "1", not base32');
  assert.equal(normalizeFingerprint("a".repeat(52)), "a".repeat(52));
  assert.equal(
    reason(normalizeFingerprint, "a".repeat(51) + "b"),
    'ends in "b", but a fingerprint ends in a or q',
  );
  assert.equal(normalizeFingerprint(` ${fp.slice(0, 26)}\n${fp.slice(26)}\t`), fp);
});

Deno.test("parseRelayUrl: ws:// and wss:// only", () => {
  assert.equal(parseRelayUrl("wss://relay.example.org:8765/x").hostname, "relay.example.org");
  assert.equal(parseRelayUrl("ws://127.0.0.1:8765").port, "8765");
  assert.match(reason(parseRelayUrl, "https://relay.example.org"), /scheme https:\/\//);
  assert.equal(reason(parseRelayUrl, "relay.example.org:8765"), "no ws:// or wss:// in front");
  assert.equal(reason(parseRelayUrl, "wss://exa mple"), "not a URL");
});
