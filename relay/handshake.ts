/** The HTTP phase of a relay connection over a socket: the bounded head read and the answers. */
import { findHeadEnd, httpResponse, MAX_HEAD_BYTES } from "./ws/http.ts";

export type HeadRead =
  | { head: Uint8Array; rest: Uint8Array }
  | { problem: "timeout" | "head_too_large" | "closed_early" | "io_error" };

/**
 * Reads up to the blank line that ends the request head: at most MAX_HEAD_BYTES, within
 * `timeoutMs` (then the socket is closed). `rest` holds what the client sent after the head.
 */
export async function readRequestHead(conn: Deno.Conn, timeoutMs: number): Promise<HeadRead> {
  const buf = new Uint8Array(MAX_HEAD_BYTES);
  let len = 0;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(conn);
  }, timeoutMs);
  try {
    while (len < buf.length) {
      const n = await conn.read(buf.subarray(len));
      if (n === null) return { problem: "closed_early" };
      const end = findHeadEnd(buf, len + n, len);
      len += n;
      if (end >= 0) return { head: buf.subarray(0, end), rest: buf.slice(end, len) };
    }
    return { problem: "head_too_large" };
  } catch {
    return { problem: timedOut ? "timeout" : "io_error" };
  } finally {
    clearTimeout(timer);
  }
}

export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Writes a plain HTTP answer; the caller closes the socket. */
export async function respond(
  conn: Deno.Conn,
  status: number,
  body: string,
  headers?: Record<string, string>,
): Promise<void> {
  await writeAll(conn, httpResponse(status, body, headers));
}

export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}
