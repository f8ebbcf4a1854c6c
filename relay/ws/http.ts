/**
 * The HTTP/1.1 side of the relay: parsing a request head (bounded by the caller), routing it to a
 * plain answer or a WebSocket upgrade (RFC 6455 §4.2), and the response bytes. No extensions
 * and no subprotocols are ever negotiated.
 */
import { createHash } from "node:crypto";

export const MAX_HEAD_BYTES = 8192;
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
export const MAILBOX_PATH = "/v1/mailbox";
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const latin1 = new TextDecoder("latin1");
const CRLFCRLF = [13, 10, 13, 10];

export interface RequestHead {
  method: string;
  path: string;
  version: string;
  /** Lowercase names; repeated headers joined with ", " (RFC 9110 §5.3). */
  headers: Map<string, string>;
}

export type Route =
  | { kind: "websocket"; service: "room" | "mailbox"; accept: string }
  | {
    kind: "response";
    status: number;
    body: string;
    headers?: Record<string, string>;
    refused?: string;
  };

/** Index just past the blank line that ends the head in `buf[0..len)`, or -1. */
export function findHeadEnd(buf: Uint8Array, len: number, from = 0): number {
  for (let i = Math.max(0, from - 3); i + 4 <= len; i++) {
    if (
      buf[i] === CRLFCRLF[0] && buf[i + 1] === CRLFCRLF[1] && buf[i + 2] === CRLFCRLF[2] &&
      buf[i + 3] === CRLFCRLF[3]
    ) return i + 4;
  }
  return -1;
}

/** Parses a request head (through its blank line); null when it is not a valid HTTP/1.x head. */
export function parseRequestHead(head: Uint8Array): RequestHead | null {
  if (head.length > MAX_HEAD_BYTES) return null;
  const lines = latin1.decode(head).split("\r\n");
  const [method, target, version, extra] = lines[0].split(" ");
  if (extra !== undefined || !method || !target || !TOKEN.test(method)) return null;
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") return null;
  const path = requestPath(target);
  if (path === null) return null;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) return null;
    const name = line.slice(0, colon).toLowerCase();
    if (!TOKEN.test(name)) return null; // also rules out obsolete line folding
    const value = line.slice(colon + 1).trim();
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  return { method, path, version, headers };
}

/** The path of an origin-form ("/a?b") or absolute-form ("http://h/a") target. */
function requestPath(target: string): string | null {
  if (target.startsWith("/")) {
    const q = target.search(/[?#]/);
    return q < 0 ? target : target.slice(0, q);
  }
  try {
    return new URL(target).pathname;
  } catch {
    return null;
  }
}

function hasToken(header: string | undefined, token: string): boolean {
  return header !== undefined &&
    header.split(",").some((t) => t.trim().toLowerCase() === token);
}

/** Sec-WebSocket-Accept for a client's Sec-WebSocket-Key. */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + WS_GUID).digest("base64");
}

/** A key is the base64 of 16 bytes: 22 characters and "==". */
function validKey(key: string | undefined): key is string {
  return key !== undefined && /^[A-Za-z0-9+/]{21}[AQgw]==$/.test(key);
}

function answer(status: number, body: string, refused?: string, headers?: Record<string, string>) {
  return { kind: "response" as const, status, body, refused, headers };
}

/** What to do with a request: docs/RELAY.md, "Endpoints". */
export function routeRequest(req: RequestHead): Route {
  const h = req.headers;
  if (req.method !== "GET") return answer(405, "method not allowed\n", "method", { Allow: "GET" });
  if (hasToken(h.get("upgrade"), "websocket")) {
    if (req.version !== "HTTP/1.1" || !hasToken(h.get("connection"), "upgrade")) {
      return answer(400, "bad WebSocket upgrade request\n", "bad_request");
    }
    if (h.get("sec-websocket-version") !== "13") {
      return answer(426, "WebSocket version 13 only\n", "bad_request", {
        "Sec-WebSocket-Version": "13",
      });
    }
    const key = h.get("sec-websocket-key");
    if (!validKey(key)) return answer(400, "bad Sec-WebSocket-Key\n", "bad_request");
    const service = req.path === MAILBOX_PATH ? "mailbox" : "room";
    return { kind: "websocket", service, accept: acceptKey(key) };
  }
  if (req.path === "/healthz") return answer(200, "ok\n");
  if (req.path === "/") return answer(200, "den relay: WebSocket chat rooms and mailboxes\n");
  return answer(404, "not found\n", "not_found");
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  503: "Service Unavailable",
};

/** A complete response that ends the connection; every one carries Date (clock checks). */
export function httpResponse(
  status: number,
  body: string,
  headers: Record<string, string> = {},
  now = new Date(),
): Uint8Array {
  const bytes = new TextEncoder().encode(body);
  const lines = [
    `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}`,
    `Date: ${now.toUTCString()}`,
    "Content-Type: text/plain; charset=utf-8",
    `Content-Length: ${bytes.length}`,
    "Connection: close",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  const head = new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
  const out = new Uint8Array(head.length + bytes.length);
  out.set(head);
  out.set(bytes, head.length);
  return out;
}

export function upgradeResponse(accept: string): Uint8Array {
  return new TextEncoder().encode(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );
}
