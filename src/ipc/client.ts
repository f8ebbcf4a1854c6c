/** Control socket client used by the short-lived CLI commands. */
import { DenError, Exit } from "../errors.ts";
import { encodeFrame, FrameDecoder } from "./frame.ts";
import { IPC_VERSION, parseResponse } from "./protocol.ts";
import { raceTimeout, TIMED_OUT } from "../util/timeout.ts";

export const NO_DAEMON_HINT = "start it with `den daemon` (or `den service install`), then retry";

export class IpcClient {
  readonly #conn: Deno.UnixConn;
  readonly #decoder = new FrameDecoder();
  #nextId = 1;

  private constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
  }

  static async connect(path: string): Promise<IpcClient> {
    try {
      return new IpcClient(await Deno.connect({ transport: "unix", path }));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.ConnectionRefused) {
        throw new DenError("no_daemon", `the den daemon is not running (no socket at ${path})`, {
          exit: Exit.noDaemon,
          hint: NO_DAEMON_HINT,
        });
      }
      if (err instanceof Deno.errors.PermissionDenied) {
        throw new DenError("socket_denied", `permission denied on the control socket ${path}`, {
          hint: "run den as the user that runs the daemon",
        });
      }
      throw err;
    }
  }

  /** Sends one request and waits for its response; DenErrors from the daemon are re-thrown. */
  async request(
    method: string,
    params: Record<string, unknown> = {},
    timeoutMs = 10_000,
  ): Promise<unknown> {
    const id = this.#nextId++;
    const bytes = encodeFrame({ v: IPC_VERSION, id, method, params });
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
    const deadline = Date.now() + timeoutMs;
    const buf = new Uint8Array(64 * 1024);
    while (true) {
      const n = await raceTimeout(this.#conn.read(buf), deadline - Date.now());
      if (n === TIMED_OUT) {
        throw new DenError("daemon_timeout", `the daemon did not answer '${method}' in time`, {
          hint: "check the daemon's log; restart it if it is stuck",
        });
      }
      if (n === null) {
        throw new DenError("daemon_closed", `the daemon closed the connection during '${method}'`, {
          hint: "check the daemon's log",
        });
      }
      for (const m of this.#decoder.push(buf.subarray(0, n))) {
        const res = parseResponse(m);
        if (typeof res === "string") throw new DenError("bad_response", res);
        if (res.id !== id && res.id !== 0) continue;
        if (res.ok) return res.result;
        throw new DenError(res.error.code, res.error.message, {
          exit: res.error.exit as typeof Exit[keyof typeof Exit],
          hint: res.error.hint,
        });
      }
    }
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

/** One request on a fresh connection. */
export async function callDaemon(
  socketPath: string,
  method: string,
  params: Record<string, unknown> = {},
  timeoutMs?: number,
): Promise<unknown> {
  const client = await IpcClient.connect(socketPath);
  try {
    return await client.request(method, params, timeoutMs);
  } finally {
    client.close();
  }
}
