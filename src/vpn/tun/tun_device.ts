/**
 * A TUN device driven through the den_tun C shim (den_tun.c): batched reads on a worker thread
 * (one nonblocking FFI call returns up to 64 packets) and batched synchronous writes. Packets are
 * bare IP packets on Linux and macOS alike (the shim strips / adds utun's family header).
 */
import { DenError } from "../../errors.ts";
import type { TunShim } from "./shim_path.ts";

/** The shim's symbols as Deno.dlopen wants them (ABI version 2). */
export const TUN_SYMBOLS = {
  den_tun_abi_version: { parameters: [], result: "i32" },
  /** (name NUL-terminated, mtu or 0, out_name 16 bytes) → fd | -errno */
  den_tun_open: { parameters: ["buffer", "i32", "buffer"], result: "i32" },
  /** (fd, buf, buf_len, lens u32[], max_packets, slot, timeout_ms) → count | -errno */
  den_tun_read_batch: {
    parameters: ["i32", "buffer", "i32", "buffer", "i32", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  /** (fd, buf, lens u32[], count) → packets written | -errno */
  den_tun_write_batch: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  /** (fd) → 0 | -errno */
  den_tun_close: { parameters: ["i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

export type TunSymbols = Deno.DynamicLibrary<typeof TUN_SYMBOLS>["symbols"];

/** Packets per read or write call. */
export const TUN_BATCH = 64;
/** Room per packet beyond the MTU in the read buffer. */
const SLOT_EXTRA = 64;
/** Interface names: at most 15 bytes (IFNAMSIZ 16 with the NUL). */
const MAX_NAME = 15;
/** Longest poll a single readBatch does; close() waits for a pending read, so keep it short. */
const MAX_TIMEOUT_MS = 60_000;

/** errno values 1-34 are the same on Linux and macOS (both from V7 Unix); the rest differ. */
const ERRNO_COMMON: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  9: "EBADF",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
};

const ERRNO: Record<"linux" | "darwin", Record<number, string>> = {
  linux: {
    ...ERRNO_COMMON,
    11: "EAGAIN",
    36: "ENAMETOOLONG",
    38: "ENOSYS",
    77: "EBADFD",
    90: "EMSGSIZE",
    93: "EPROTONOSUPPORT",
    105: "ENOBUFS",
  },
  darwin: {
    ...ERRNO_COMMON,
    35: "EAGAIN",
    40: "EMSGSIZE",
    43: "EPROTONOSUPPORT",
    55: "ENOBUFS",
    63: "ENAMETOOLONG",
    78: "ENOSYS",
  },
};

const EXPLAIN: Record<string, string> = {
  EPERM: "needs root or CAP_NET_ADMIN",
  EACCES: "needs root or CAP_NET_ADMIN",
  ENOENT: "no /dev/net/tun (load the tun module: modprobe tun)",
  ENODEV: "no TUN support in this kernel",
  EBUSY: "the interface name is already in use",
  EEXIST: "the interface name is already in use",
  EINVAL: "invalid interface name or argument",
  ENAMETOOLONG: "interface name too long (at most 15 bytes)",
  EMFILE: "too many open files",
  ENFILE: "too many open files",
  ENOSYS: "TUN devices are not supported on this OS",
  EBADF: "the device is closed",
  EBADFD: "the device was detached",
};

/** "EPERM (needs root or CAP_NET_ADMIN)" for errno 1, "errno 123" for unknown values. */
export function errnoText(errno: number): string {
  const table = Deno.build.os === "darwin" ? ERRNO.darwin : ERRNO.linux;
  const name = table[errno];
  if (!name) return `errno ${errno}`;
  let why = EXPLAIN[name];
  if (name === "ENOENT" && Deno.build.os === "darwin") why = "no utun kernel control";
  if ((name === "EPERM" || name === "EACCES") && Deno.build.os === "darwin") why = "needs root";
  return why ? `${name} (${why})` : name;
}

function tunError(what: string, errno: number): DenError {
  const text = errnoText(errno);
  const hint = text.includes("root") ? "run den with sudo (or give it CAP_NET_ADMIN)" : undefined;
  return new DenError("tun_error", `${what}: ${text}`, { hint });
}

/**
 * One open TUN interface. Not shareable between threads; use one reader at a time.
 *
 * Closing: `close()` marks the device closed at once (later reads return [], later writes 0). If
 * a readBatch is in flight on the FFI worker thread the fd is only closed after that call
 * returns (at most its timeout later), so the fd number is never reused under a running poll();
 * the promise close() returns settles when the fd is really closed and the interface is gone.
 */
export class TunDevice {
  readonly name: string;
  readonly fd: number;
  readonly mtu: number;
  /** Bytes reserved per packet in the read buffer (mtu + 64). */
  readonly slot: number;

  readonly #sym: TunSymbols;
  readonly #rbuf: Uint8Array;
  readonly #rlens = new Uint32Array(TUN_BATCH);
  readonly #wbuf: Uint8Array;
  readonly #wlens = new Uint32Array(TUN_BATCH);
  #pending: Promise<number> | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;

  private constructor(sym: TunSymbols, name: string, fd: number, mtu: number) {
    this.#sym = sym;
    this.name = name;
    this.fd = fd;
    this.mtu = mtu;
    this.slot = mtu + SLOT_EXTRA;
    this.#rbuf = new Uint8Array(TUN_BATCH * this.slot);
    this.#wbuf = new Uint8Array(TUN_BATCH * this.slot);
  }

  /**
   * Creates interface `name` ("" lets the kernel choose; on macOS "" or "utunN") with `mtu`
   * (68..65535). The interface is down and has no address: configure it with `ip` / `ifconfig`.
   */
  static open(shim: TunShim, name: string, mtu: number): Promise<TunDevice> {
    const bytes = new TextEncoder().encode(name);
    if (bytes.length > MAX_NAME || /[\0\s/]/.test(name)) {
      return Promise.reject(
        new DenError("tun_error", `invalid TUN interface name "${name}" (at most 15 bytes)`),
      );
    }
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
      return Promise.reject(new DenError("tun_error", `invalid TUN MTU ${mtu} (68..65535)`));
    }
    const cname = new Uint8Array(bytes.length + 1);
    cname.set(bytes);
    const out = new Uint8Array(16);
    const fd = shim.symbols.den_tun_open(cname, mtu, out);
    if (fd < 0) {
      return Promise.reject(tunError(`cannot open TUN device "${name || "(any)"}"`, -fd));
    }
    const end = out.indexOf(0);
    const actual = new TextDecoder().decode(out.subarray(0, end < 0 ? out.length : end));
    return Promise.resolve(new TunDevice(shim.symbols, actual, fd, mtu));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Waits up to `timeoutMs` (clamped to 0..60000) for packets and returns up to 64 of them; []
   * on timeout or once the device is closed. The packets are copies (one fresh buffer per batch,
   * each packet a view into it), so they stay valid after the next read. One read at a time.
   */
  async readBatch(timeoutMs: number): Promise<Uint8Array[]> {
    if (this.#closed) return [];
    if (this.#pending) {
      throw new DenError("tun_busy", `readBatch on ${this.name} while another one is pending`);
    }
    const timeout = Math.max(0, Math.min(MAX_TIMEOUT_MS, Math.trunc(timeoutMs) || 0));
    const call = this.#sym.den_tun_read_batch(
      this.fd,
      this.#rbuf,
      this.#rbuf.length,
      this.#rlens,
      TUN_BATCH,
      this.slot,
      timeout,
    );
    this.#pending = call;
    let n: number;
    try {
      n = await call;
    } finally {
      this.#pending = null;
    }
    if (this.#closed) return [];
    if (n < 0) throw tunError(`reading from ${this.name}`, -n);
    if (n === 0) return [];
    let total = 0;
    for (let i = 0; i < n; i++) total += this.#rlens[i];
    const copy = this.#rbuf.slice(0, total);
    const packets = new Array<Uint8Array>(n);
    let off = 0;
    for (let i = 0; i < n; i++) {
      const len = this.#rlens[i];
      packets[i] = copy.subarray(off, off + len);
      off += len;
    }
    return packets;
  }

  /**
   * Writes packets to the interface (synchronously; the kernel takes them at once), 64 per FFI
   * call. Returns how many were written: packets the kernel refuses (not IPv4/IPv6, oversized,
   * link down) are skipped, a full queue drops the rest of the call's batch. Empty packets and
   * ones longer than the write buffer (64 × slot) are skipped. 0 once closed.
   */
  writeBatch(packets: Uint8Array[]): number {
    if (this.#closed) return 0;
    let written = 0;
    let i = 0;
    while (i < packets.length) {
      let count = 0, off = 0;
      while (i < packets.length && count < TUN_BATCH) {
        const p = packets[i];
        if (p.length === 0 || p.length > this.#wbuf.length) {
          i++;
          continue;
        }
        if (off + p.length > this.#wbuf.length) break;
        this.#wbuf.set(p, off);
        this.#wlens[count++] = p.length;
        off += p.length;
        i++;
      }
      if (count === 0) continue;
      const r = this.#sym.den_tun_write_batch(this.fd, this.#wbuf, this.#wlens, count);
      if (r < 0) {
        if (written > 0) return written;
        throw tunError(`writing to ${this.name}`, -r);
      }
      written += r;
    }
    return written;
  }

  /** Closes the device (idempotent); see the class comment for the timing. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    const finish = () => {
      this.#sym.den_tun_close(this.fd);
    };
    const pending = this.#pending;
    this.#closing = pending ? pending.then(finish, finish) : Promise.resolve(finish());
    return this.#closing;
  }
}
