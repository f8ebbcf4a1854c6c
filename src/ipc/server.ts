/** Control socket server: one JSON request/response exchange at a time per connection. */
import { DenError } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import { encodeFrame, FrameDecoder, FrameError } from "./frame.ts";
import { raceTimeout, TIMED_OUT } from "../util/timeout.ts";
import { IPC_VERSION, type IpcErrorBody, type IpcResponse, parseRequest } from "./protocol.ts";

export type IpcHandler = (params: Record<string, unknown>) => Promise<unknown> | unknown;

export interface IpcServerOptions {
  maxConnections?: number;
  /** A connection that sends nothing for this long is closed. */
  idleTimeoutMs?: number;
  onRequest?: (method: string, ok: boolean) => void;
}

/** Listens with umask 0177 so the socket is 0600 from the moment it exists. */
function listenPrivate(path: string): Deno.UnixListener {
  const old = Deno.umask(0o177);
  try {
    return Deno.listen({ transport: "unix", path });
  } finally {
    Deno.umask(old);
  }
}

/**
 * Removes a socket file left behind by a daemon that crashed. Only call while holding the
 * daemon lock: then no live daemon can own it. Anything that is not a socket is left alone.
 */
export async function removeStaleSocket(path: string): Promise<boolean> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
  if (!info.isSocket) {
    throw new DenError("socket_path_taken", `${path} exists and is not a socket`, {
      hint: `move it away, or choose another home with --home`,
    });
  }
  await Deno.remove(path);
  return true;
}

export class IpcServer {
  readonly #listener: Deno.UnixListener;
  readonly #handlers: Map<string, IpcHandler>;
  readonly #log: Logger;
  readonly #opts: Required<Omit<IpcServerOptions, "onRequest">> & IpcServerOptions;
  readonly #conns = new Set<Deno.UnixConn>();
  readonly #accepting: Promise<void>;
  readonly path: string;

  constructor(
    path: string,
    handlers: Map<string, IpcHandler>,
    log: Logger,
    opts: IpcServerOptions = {},
  ) {
    this.path = path;
    this.#handlers = handlers;
    this.#log = log;
    this.#opts = { maxConnections: 64, idleTimeoutMs: 30_000, ...opts };
    this.#listener = listenPrivate(path);
    this.#accepting = this.#acceptLoop();
  }

  async #acceptLoop(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        if (this.#conns.size >= this.#opts.maxConnections) {
          this.#log.warn("control connection refused: too many open", {
            max: this.#opts.maxConnections,
          });
          conn.close();
          continue;
        }
        this.#conns.add(conn);
        this.#serve(conn).finally(() => {
          this.#conns.delete(conn);
          try {
            conn.close();
          } catch { /* already closed */ }
        });
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
  }

  async #serve(conn: Deno.UnixConn): Promise<void> {
    const decoder = new FrameDecoder();
    const buf = new Uint8Array(64 * 1024);
    while (true) {
      let n: number | null | typeof TIMED_OUT;
      try {
        n = await raceTimeout(conn.read(buf), this.#opts.idleTimeoutMs);
      } catch {
        return; // peer reset or server closing
      }
      if (n === null || n === TIMED_OUT) return;
      let messages: unknown[];
      try {
        messages = decoder.push(buf.subarray(0, n));
      } catch (err) {
        const msg = err instanceof FrameError ? err.message : String(err);
        await this.#send(conn, errorResponse(0, { code: "bad_frame", message: msg, exit: 1 }));
        return;
      }
      for (const m of messages) {
        if (!await this.#send(conn, await this.#dispatch(m))) return;
      }
    }
  }

  async #dispatch(raw: unknown): Promise<IpcResponse> {
    const req = parseRequest(raw);
    if (typeof req === "string") {
      return errorResponse(0, { code: "bad_request", message: req, exit: 1 });
    }
    if (req.v !== IPC_VERSION) {
      return errorResponse(req.id, {
        code: "ipc_version",
        message: `the daemon speaks control protocol ${IPC_VERSION}, the client ${req.v}`,
        hint: "restart the daemon after upgrading den so both are the same version",
        exit: 1,
      });
    }
    const handler = this.#handlers.get(req.method);
    if (!handler) {
      return errorResponse(req.id, {
        code: "unknown_method",
        message: `the daemon does not know '${req.method}'`,
        hint: "restart the daemon after upgrading den so both are the same version",
        exit: 1,
      });
    }
    try {
      const result = await handler(req.params);
      this.#opts.onRequest?.(req.method, true);
      return { v: IPC_VERSION, id: req.id, ok: true, result: result ?? null };
    } catch (err) {
      this.#opts.onRequest?.(req.method, false);
      if (err instanceof DenError) {
        return errorResponse(req.id, {
          code: err.code,
          message: err.message,
          hint: err.hint,
          exit: err.exit,
        });
      }
      this.#log.error("control request failed", { method: req.method, error: String(err) });
      return errorResponse(req.id, {
        code: "internal",
        message: `internal error in ${req.method}: ${err}`,
        exit: 1,
      });
    }
  }

  async #send(conn: Deno.UnixConn, res: IpcResponse): Promise<boolean> {
    try {
      const bytes = encodeFrame(res);
      let off = 0;
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    await this.#accepting.catch(() => {});
    try {
      await Deno.remove(this.path);
    } catch { /* gone already */ }
  }
}

function errorResponse(id: number, error: IpcErrorBody): IpcResponse {
  return { v: IPC_VERSION, id, ok: false, error };
}
