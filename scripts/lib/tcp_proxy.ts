/** One forwarded connection's bytes, each direction apart (chunks as read, in order). */
export interface ProxiedConn {
  /** client → target. */
  up: Uint8Array[];
  /** target → client. */
  down: Uint8Array[];
  /** Both directions have ended. */
  done: boolean;
}

/**
 * A TCP forwarder for tests: listens on 127.0.0.1, connects each client to a target, copies bytes
 * both ways, and keeps a copy of everything that passed (a capture of what the wire carried), as
 * one stream and per connection and direction.
 */
export class TcpProxy {
  readonly #listener: Deno.TcpListener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #captured: Uint8Array[] = [];
  readonly #pipes: Promise<void>[] = [];
  /** Connections in the order they were accepted. */
  readonly conns: ProxiedConn[] = [];
  readonly #loop: Promise<void>;

  private constructor(listener: Deno.TcpListener, target: Deno.ConnectOptions) {
    this.#listener = listener;
    this.#loop = this.#accept(target);
  }

  /** Listens on `port` (0: any free one) and forwards to `target`. */
  static start(target: Deno.ConnectOptions, port = 0): TcpProxy {
    return new TcpProxy(Deno.listen({ hostname: "127.0.0.1", port }), target);
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  /** Every byte forwarded so far, both directions, in arrival order. */
  captured(): Uint8Array {
    const out = new Uint8Array(this.#captured.reduce((n, c) => n + c.length, 0));
    let off = 0;
    for (const c of this.#captured) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }

  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch { /* closed */ }
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await this.#loop;
    await Promise.all(this.#pipes);
  }

  async #accept(target: Deno.ConnectOptions): Promise<void> {
    try {
      for await (const client of this.#listener) {
        const conn: ProxiedConn = { up: [], down: [], done: false };
        this.conns.push(conn);
        const connected = Deno.connect(target).then(async (server) => {
          this.#conns.add(client).add(server);
          await Promise.all([
            this.#pipe(client, server, conn.up),
            this.#pipe(server, client, conn.down),
          ]);
          conn.done = true;
        }, () => {
          conn.done = true;
          client.close();
        });
        this.#pipes.push(connected);
      }
    } catch { /* listener closed */ }
  }

  async #pipe(from: Deno.Conn, to: Deno.Conn, record: Uint8Array[]): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        const chunk = buf.slice(0, n);
        this.#captured.push(chunk);
        record.push(chunk);
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } catch { /* either side went away */ }
    for (const c of [from, to]) {
      try {
        c.close();
      } catch { /* closed */ }
      this.#conns.delete(c);
    }
  }
}

/** Whether `needle` occurs anywhere in `hay` (a capture searched for something that must not be there). */
export function containsBytes(hay: Uint8Array, needle: Uint8Array): boolean {
  if (needle.length === 0) return true;
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}
