/**
 * `node reference_relay.mjs PORT` (NODE_PATH naming a node_modules with `ws`): the reference
 * that scripts/bench/relay.ts measures `den relay` against. A minimal relay on `ws` that speaks the
 * same wire as den (docs/RELAY.md) with as little work as possible:
 *   /v1/mailbox: CHALLENGE, then AUTH *without* checking the signature; the mailbox id is computed
 *     as den computes it (SHA-256 over "den-mailbox-v1" ‖ fingerprint hash), so the same client
 *     code checks READY against both relays; SEND becomes DELIVER by rewriting the 33-byte header
 *     in place; a consumer with more than 4 MiB unsent is dropped, as den does.
 *   any other path: chat rooms, JOIN and SIGNAL only (enough for the idle-connections test).
 * ws uses the bufferutil package for (un)masking when it is installed beside it, unless
 * WS_NO_BUFFER_UTIL is set. Prints "listening PORT bufferutil=yes|no" once it accepts connections.
 */
import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
// Found through NODE_PATH: the bench installs ws in a cache folder, not in the repository.
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2]);
const MAX_MESSAGE = 65_536;
const MAX_QUEUED = 4 * 1024 * 1024;
const KEY_BYTES = [32, 32, 1184];
const AUTH_LEN = 1 + 32 + 32 + 1184 + 64;
const ROOM = /^[A-Z0-9]{8,16}$/;

/** mailbox id = SHA-256("den-mailbox-v1" ‖ F), F = SHA-256 of the fingerprint encoding. */
function mailboxId(keys) {
  const parts = [Buffer.from("den-fingerprint-v1")];
  for (const k of keys) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(k.length);
    parts.push(len, k);
  }
  const f = createHash("sha256").update(Buffer.concat(parts)).digest();
  return createHash("sha256").update("den-mailbox-v1").update(f).digest();
}

function errorFrame(code, message) {
  const m = Buffer.from(message);
  const b = Buffer.alloc(3 + m.length);
  b[0] = 0x7f;
  b.writeUInt16BE(code, 1);
  m.copy(b, 3);
  return b;
}

const mailboxes = new Map(); // hex id → ws
const rooms = new Map(); // code → Set<ws>

function fail(ws, code, message) {
  ws.send(errorFrame(code, message));
  ws.close(1008);
}

function onMailbox(ws) {
  const nonce = randomBytes(32);
  ws.send(Buffer.concat([Buffer.from([0x01, 1]), nonce]));
  let id = null;
  let key = null;
  ws.on("message", (data, isBinary) => {
    if (!isBinary || data.length === 0) return fail(ws, 400, "malformed frame");
    const type = data[0];
    if (id === null) {
      if (type !== 0x02 || data.length !== AUTH_LEN) return fail(ws, 401, "not authenticated");
      const keys = [];
      let off = 1;
      for (const n of KEY_BYTES) {
        keys.push(data.subarray(off, off + n));
        off += n;
      }
      id = mailboxId(keys);
      key = id.toString("hex");
      const old = mailboxes.get(key);
      if (old) fail(old, 409, "replaced");
      mailboxes.set(key, ws);
      ws.send(Buffer.concat([Buffer.from([0x03]), id]));
      return;
    }
    if (type !== 0x10 || data.length < 34) return fail(ws, 400, "malformed frame");
    const dst = mailboxes.get(data.toString("hex", 1, 33));
    if (dst === undefined) {
      const noRoute = Buffer.from(data.subarray(0, 33));
      noRoute[0] = 0x12;
      ws.send(noRoute);
      return;
    }
    if (dst.bufferedAmount > MAX_QUEUED) {
      dst.terminate();
      return;
    }
    data[0] = 0x11;
    id.copy(data, 1);
    dst.send(data);
  });
  ws.on("close", () => {
    if (key !== null && mailboxes.get(key) === ws) mailboxes.delete(key);
  });
}

function onRoom(ws) {
  let room = null;
  const error = (code, message) => ws.send(JSON.stringify({ type: "ERROR", code, message }));
  ws.on("message", (data, isBinary) => {
    let msg;
    try {
      msg = isBinary ? null : JSON.parse(data.toString());
    } catch { /* not JSON */ }
    if (msg === null || typeof msg !== "object" || typeof msg?.type !== "string") {
      error(400, "bad message");
      return ws.close(1008);
    }
    if (
      msg.type === "JOIN" && room === null && typeof msg.room === "string" && ROOM.test(msg.room)
    ) {
      const members = rooms.get(msg.room) ?? new Set();
      if (members.size >= 2) {
        error(409, "room full");
        return ws.close(1008);
      }
      members.add(ws);
      rooms.set(msg.room, members);
      room = msg.room;
      if (members.size === 2) { for (const m of members) m.send('{"type":"PEER_FOUND"}'); }
    } else if (msg.type === "SIGNAL" && room !== null) {
      const other = [...rooms.get(room)].find((m) => m !== ws);
      if (other === undefined) error(404, "alone in the room");
      else other.send(data.toString());
    } else {
      error(400, "bad message");
      ws.close(1008);
    }
  });
  ws.on("close", () => {
    const members = room === null ? undefined : rooms.get(room);
    if (members === undefined) return;
    members.delete(ws);
    if (members.size === 0) rooms.delete(room);
    else for (const m of members) m.send('{"type":"PEER_LEFT"}');
  });
}

const wss = new WebSocketServer({
  host: "127.0.0.1",
  port,
  maxPayload: MAX_MESSAGE,
  perMessageDeflate: false,
  clientTracking: false,
});
wss.on("connection", (ws, req) => {
  if (new URL(req.url, "http://x").pathname === "/v1/mailbox") onMailbox(ws);
  else onRoom(ws);
});

function hasBufferUtil() {
  if (process.env.WS_NO_BUFFER_UTIL) return false;
  try {
    require.resolve("bufferutil", { paths: [require.resolve("ws")] });
    return true;
  } catch {
    return false;
  }
}

wss.on(
  "listening",
  () => console.log(`listening ${port} bufferutil=${hasBufferUtil() ? "yes" : "no"}`),
);
