/**
 * One authenticated session on one connection: runs the handshake over framed bytes, then moves
 * records both ways. Protocol logic lives in src/session (pure); this is the thin I/O around it.
 */
import {
  type Established,
  type HandshakeConfig,
  InitiatorHandshake,
  MAX_HANDSHAKE_MESSAGE,
  ResponderHandshake,
} from "../session/handshake.ts";
import { MAX_RECORD_PAYLOAD, RECORD_OVERHEAD } from "../session/record.ts";
import { type FramedConn } from "../transport/framed.ts";
import { raceTimeout, TIMED_OUT } from "../util/timeout.ts";
import { DenError } from "../errors.ts";

export const MAX_RECORD_FRAME = MAX_RECORD_PAYLOAD + RECORD_OVERHEAD;

function timeoutError(): DenError {
  return new DenError("handshake_timeout", "the peer did not complete the handshake in time");
}

async function readHandshake(conn: FramedConn, deadline: number): Promise<Uint8Array> {
  const r = await raceTimeout(conn.read(MAX_HANDSHAKE_MESSAGE), deadline - Date.now());
  if (r === TIMED_OUT) throw timeoutError();
  if (r === null) {
    throw new DenError("handshake_eof", "the peer closed the connection during the handshake");
  }
  return r;
}

export async function runInitiator(
  conn: FramedConn,
  cfg: HandshakeConfig,
  timeoutMs: number,
): Promise<Established> {
  const deadline = Date.now() + timeoutMs;
  const hs = new InitiatorHandshake(cfg);
  await conn.write(await hs.start());
  const { reply, established } = await hs.finish(await readHandshake(conn, deadline));
  await conn.write(reply);
  return established;
}

export async function runResponder(
  conn: FramedConn,
  cfg: HandshakeConfig,
  timeoutMs: number,
): Promise<Established> {
  const deadline = Date.now() + timeoutMs;
  const hs = new ResponderHandshake(cfg);
  await conn.write(await hs.respond(await readHandshake(conn, deadline)));
  return await hs.finish(await readHandshake(conn, deadline));
}

export interface SessionEvents {
  onMessage(type: number, payload: Uint8Array): void;
  /** Called once when the read loop ends: `error` is why (null for a clean end of stream). */
  onEnd(error: unknown): void;
}

/** Records over a FramedConn. Writes are queued so frames never interleave. */
export class SessionConn {
  readonly conn: FramedConn;
  readonly established: Established;
  readonly initiator: boolean;
  readonly #now: () => number;
  #writeChain: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(
    conn: FramedConn,
    established: Established,
    initiator: boolean,
    now: () => number,
  ) {
    this.conn = conn;
    this.established = established;
    this.initiator = initiator;
    this.#now = now;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Seals now (so record order is call order) and queues the write. */
  send(type: number, payload: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const record = this.established.sender.seal(type, payload, this.#now());
    this.#writeChain = this.#writeChain.then(() =>
      this.#closed ? undefined : this.conn.write(record)
    )
      .catch(() => this.close());
    return this.#writeChain;
  }

  /** Reads until the stream ends or a record fails to open; never throws. */
  async run(events: SessionEvents): Promise<void> {
    let error: unknown = null;
    try {
      while (!this.#closed) {
        const frame = await this.conn.read(MAX_RECORD_FRAME);
        if (frame === null) break;
        const { type, payload } = this.established.receiver.open(frame);
        events.onMessage(type, payload);
      }
    } catch (err) {
      if (!this.#closed) error = err;
    }
    this.close();
    events.onEnd(error);
  }

  /** Sends a last message (if any), then closes once queued writes are out. */
  async closeWith(type: number, payload: Uint8Array): Promise<void> {
    await raceTimeout(this.send(type, payload), 500);
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.conn.close();
  }
}
