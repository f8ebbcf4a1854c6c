import { formatIp, type IpAddress, parseHostPort, parseIp } from "../../config/validators.ts";

/**
 * The shim's symbols as the data-plane worker binds them: every call synchronous, because the
 * worker is a thread of its own that waits in den_poll (den_udp.c) rather than in the event loop.
 */
export const DATAPLANE_SYMBOLS = {
  /** (fd, buf, buf_len, lens u32[], max_packets, slot, timeout_ms) → count | -errno */
  den_tun_read_batch: {
    parameters: ["i32", "buffer", "i32", "buffer", "i32", "i32", "i32"],
    result: "i32",
  },
  /** (fd, buf, lens u32[], count) → packets written | -errno */
  den_tun_write_batch: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  /** (address record 20 bytes, kernel buffer bytes) → fd | -errno */
  den_udp_open: { parameters: ["buffer", "i32"], result: "i32" },
  /** (fd, address record out) → 0 | -errno */
  den_udp_local: { parameters: ["i32", "buffer"], result: "i32" },
  /** (fd, buf, buf_len, lens u32[], addrs, max, slot) → count | -errno */
  den_udp_recv_batch: {
    parameters: ["i32", "buffer", "i32", "buffer", "buffer", "i32", "i32"],
    result: "i32",
  },
  /** (fd, buf, lens u32[], addrs, count) → datagrams sent | -errno */
  den_udp_send_batch: {
    parameters: ["i32", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  /** (fds i32[], count, timeout_ms, ready u8[]) → how many are ready | -errno */
  den_poll: { parameters: ["buffer", "i32", "i32", "buffer"], result: "i32" },
  /** Closes the UDP socket (den_tun_close closes any descriptor). */
  den_close: { name: "den_tun_close", parameters: ["i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

export type DataPlaneSymbols = Deno.DynamicLibrary<typeof DATAPLANE_SYMBOLS>["symbols"];

/** Address records as den_udp.c takes them: family, 0, port (big-endian), 16 address bytes. */
export const ADDRESS_RECORD = 20;

/** "HOST:PORT" ("[V6]:PORT") → record; null when it is not an IP literal and port. */
export function addressRecord(text: string): Uint8Array | null {
  let ip: IpAddress;
  let port: number;
  try {
    const hp = parseHostPort(text);
    ip = parseIp(hp.host);
    port = hp.port;
  } catch {
    return null;
  }
  if (port < 1 || port > 65535) return null;
  const rec = new Uint8Array(ADDRESS_RECORD);
  rec[0] = ip.family;
  rec[2] = port >> 8;
  rec[3] = port & 0xff;
  rec.set(ip.bytes, 4);
  return rec;
}

/** Record → "HOST:PORT" as addressRecord reads it. */
export function addressText(rec: Uint8Array): string {
  const port = (rec[2] << 8) | rec[3];
  if (rec[0] === 4) return `${formatIp({ family: 4, bytes: rec.subarray(4, 8) })}:${port}`;
  return `[${formatIp({ family: 6, bytes: rec.subarray(4, 20) })}]:${port}`;
}
