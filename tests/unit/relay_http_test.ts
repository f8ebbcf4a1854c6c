/** What the relay decides before a WebSocket exists: request heads, routes, limits, addresses. */
import assert from "node:assert/strict";
import { canonicalIp, clientAddress, ConnectionLimits } from "../../relay/limits.ts";
import {
  acceptKey,
  findHeadEnd,
  httpResponse,
  MAX_HEAD_BYTES,
  parseRequestHead,
  type RequestHead,
  routeRequest,
  upgradeResponse,
} from "../../relay/ws/http.ts";

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const enc = new TextEncoder();

function head(lines: string[]): Uint8Array {
  return enc.encode(lines.join("\r\n") + "\r\n\r\n");
}

function upgrade(path = "/", extra: string[] = [], drop: string[] = []): string[] {
  const headers = [
    "Host: relay.example:8765",
    "Upgrade: websocket",
    "Connection: keep-alive, Upgrade",
    `Sec-WebSocket-Key: ${KEY}`,
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    ...extra,
  ].filter((h) => !drop.some((d) => h.toLowerCase().startsWith(d.toLowerCase() + ":")));
  return [`GET ${path} HTTP/1.1`, ...headers];
}

function parse(lines: string[]): RequestHead {
  const req = parseRequestHead(head(lines));
  assert.ok(req, `should parse: ${lines[0]}`);
  return req;
}

Deno.test("http: the accept key vector of RFC 6455 §1.3", () => {
  assert.equal(acceptKey(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
});

Deno.test("http: the end of the head is found, also when it arrives in pieces", () => {
  const bytes = head(["GET / HTTP/1.1", "Host: x"]);
  const withBody = new Uint8Array([...bytes, 1, 2, 3]);
  assert.equal(findHeadEnd(withBody, withBody.length), bytes.length);
  assert.equal(findHeadEnd(bytes, bytes.length - 1), -1);
  // Searching only the new bytes (from = old length) still sees a CRLFCRLF that straddles.
  assert.equal(findHeadEnd(bytes, bytes.length, bytes.length - 2), bytes.length);
});

Deno.test("http: a valid upgrade routes to rooms, /v1/mailbox to mailboxes", () => {
  const req = parse(upgrade("/ws?x=1"));
  assert.equal(req.method, "GET");
  assert.equal(req.path, "/ws");
  assert.equal(req.headers.get("upgrade"), "websocket");
  assert.deepEqual(routeRequest(req), {
    kind: "websocket",
    service: "room",
    accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
  });
  const mailbox = routeRequest(parse(upgrade("/v1/mailbox")));
  assert.ok(mailbox.kind === "websocket" && mailbox.service === "mailbox");
  const absolute = routeRequest(parse(upgrade("http://relay.example/v1/mailbox")));
  assert.ok(absolute.kind === "websocket" && absolute.service === "mailbox");
  // Header names are case-insensitive, and so are the Upgrade/Connection tokens.
  const shouty = parse([
    "GET / HTTP/1.1",
    "UPGRADE: WebSocket",
    "connection: UPGRADE",
    `SEC-WEBSOCKET-KEY: ${KEY}`,
    "sec-websocket-version: 13",
  ]);
  assert.equal(routeRequest(shouty).kind, "websocket");
});

Deno.test("http: bad upgrades get 400 or 426, other methods 405", () => {
  const status = (lines: string[]) => {
    const r = routeRequest(parse(lines));
    assert.equal(r.kind, "response");
    return r.kind === "response" ? [r.status, r.refused] : [];
  };
  assert.deepEqual(status(upgrade("/", [], ["Connection"])), [400, "bad_request"]);
  assert.deepEqual(status(upgrade("/", [], ["Sec-WebSocket-Key"])), [400, "bad_request"]);
  assert.deepEqual(
    status(upgrade("/", ["Sec-WebSocket-Key: short=="], ["Sec-WebSocket-Key"])),
    [400, "bad_request"],
  );
  assert.deepEqual(
    status(upgrade("/", ["Sec-WebSocket-Version: 8"], ["Sec-WebSocket-Version"])),
    [426, "bad_request"],
  );
  const v10 = upgrade();
  v10[0] = "GET / HTTP/1.0";
  assert.deepEqual(status(v10), [400, "bad_request"]);
  const post = upgrade();
  post[0] = "POST / HTTP/1.1";
  assert.deepEqual(status(post), [405, "method"]);
});

Deno.test("http: plain GETs: /healthz and / answer 200, the rest 404", () => {
  const get = (path: string) => routeRequest(parse([`GET ${path} HTTP/1.1`, "Host: x"]));
  assert.deepEqual(get("/healthz"), {
    kind: "response",
    status: 200,
    body: "ok\n",
    refused: undefined,
    headers: undefined,
  });
  const root = get("/");
  assert.ok(root.kind === "response" && root.status === 200 && /den relay/.test(root.body));
  const missing = get("/v1/mailbox"); // the mailbox path without an upgrade
  assert.ok(missing.kind === "response" && missing.status === 404);
});

Deno.test("http: malformed or oversize heads do not parse", () => {
  const bad = [
    ["GET /"],
    ["GET / HTTP/1.1 extra"],
    ["GET / HTTP/2.0"],
    ["G(T / HTTP/1.1"],
    ["GET nowhere HTTP/1.1"],
    ["GET / HTTP/1.1", "no colon here"],
    ["GET / HTTP/1.1", ": empty name"],
    ["GET / HTTP/1.1", "Host: x", " folded: continuation"],
    ["GET / HTTP/1.1", "Bad Name: x"],
  ];
  for (const lines of bad) assert.equal(parseRequestHead(head(lines)), null, lines.join(" | "));
  const big = ["GET / HTTP/1.1", `X-Pad: ${"a".repeat(MAX_HEAD_BYTES)}`];
  assert.equal(parseRequestHead(head(big)), null);
});

Deno.test("http: repeated headers are joined, values trimmed", () => {
  const req = parse([
    "GET / HTTP/1.1",
    "X-Forwarded-For: 1.1.1.1",
    "x-forwarded-for:   2.2.2.2  ",
  ]);
  assert.equal(req.headers.get("x-forwarded-for"), "1.1.1.1, 2.2.2.2");
});

Deno.test("http: responses carry Date, length and Connection: close", () => {
  const now = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  const text = new TextDecoder().decode(httpResponse(429, "slow down\n", { "X-A": "b" }, now));
  assert.match(text, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
  assert.match(text, /\r\nDate: Fri, 02 Jan 2026 03:04:05 GMT\r\n/);
  assert.match(text, /\r\nContent-Length: 10\r\n/);
  assert.match(text, /\r\nConnection: close\r\n/);
  assert.match(text, /\r\nX-A: b\r\n\r\nslow down\n$/);
  const up = new TextDecoder().decode(upgradeResponse(acceptKey(KEY)));
  assert.equal(
    up,
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
  );
  assert.doesNotMatch(up, /Extensions|Protocol:/, "nothing is negotiated");
});

Deno.test("limits: per-address and total counts refuse, and release frees", () => {
  const l = new ConnectionLimits(3, 2);
  assert.equal(l.admit("1.1.1.1"), null);
  assert.equal(l.admit("1.1.1.1"), null);
  assert.equal(l.admit("1.1.1.1"), "per_ip");
  assert.equal(l.admit(null), null); // counted in the total only
  assert.equal(l.admit("2.2.2.2"), "max_conns");
  assert.equal(l.total, 3);
  l.release("1.1.1.1");
  assert.equal(l.count("1.1.1.1"), 1);
  assert.equal(l.admit("2.2.2.2"), null);
  l.release(null);
  l.release("1.1.1.1");
  l.release("2.2.2.2");
  assert.equal(l.total, 0);
  assert.equal(l.count("1.1.1.1"), 0);
});

Deno.test("limits: the client address comes from X-Forwarded-For only via a trusted proxy", () => {
  const trusted = new Set([canonicalIp("10.0.0.1")!, canonicalIp("::1")!]);
  assert.equal(clientAddress("10.0.0.1", "6.6.6.6, 203.0.113.7", trusted), "203.0.113.7");
  assert.equal(clientAddress("::1", " 2001:DB8::1 ", trusted), "2001:db8::1");
  assert.equal(clientAddress("10.0.0.9", "203.0.113.7", trusted), "10.0.0.9", "untrusted peer");
  assert.equal(clientAddress("10.0.0.1", undefined, trusted), "10.0.0.1", "no header");
  assert.equal(clientAddress("10.0.0.1", "1.2.3.4, garbage", trusted), "10.0.0.1", "bad entry");
  assert.equal(canonicalIp("0:0:0:0:0:0:0:1"), "::1");
  assert.equal(canonicalIp("::ffff:10.0.0.1"), "10.0.0.1", "IPv4-mapped is IPv4");
  assert.equal(clientAddress("10.0.0.1", "::ffff:203.0.113.9", trusted), "203.0.113.9");
  assert.equal(canonicalIp("localhost"), null);
});
