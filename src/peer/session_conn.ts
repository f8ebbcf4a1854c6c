/**
 * One authenticated session over frame links: runs the handshake, then moves records both ways,
 * and can move to another link mid-session (relay → direct) without losing a record. Protocol
 * logic lives in src/session (pure); this is the thin I/O around it.
 */
import {
  type Established,
  type HandshakeConfig,
  InitiatorHandshake,
  MAX_HANDSHAKE_MESSAGE,
  ResponderHandshake,
} from "../session/handshake.ts";
import { MAX_RECORD_PAYLOAD, RECORD_OVERHEAD } from "../session/record.ts";
import type { FrameLink, LinkKind } from "../transport/link.ts";
import { raceTimeout, TIMED_OUT } from "../util/timeout.ts";
import { DenError } from "../errors.ts";
import { MsgType } from "../wire/peer_control.ts";

export const MAX_RECORD_FRAME = MAX_RECORD_PAYLOAD + RECORD_OVERHEAD;
/** How long a path switch announced by the peer may wait for its new link to finish attaching. */
const SWITCH_WAIT_MS = 10_000;
const EMPTY = new Uint8Array(0);

function timeoutError(): DenError {
  return new DenError("handshake_timeout", "the peer did not complete the handshake in time");
}

/** The next frame within the deadline; an error when it ends or times out. */
export async function readBefore(
  link: FrameLink,
  limit: number,
  deadline: number,
): Promise<Uint8Array> {
  const r = await raceTimeout(link.read(limit), deadline - Date.now());
  if (r === TIMED_OUT) throw timeoutError();
  if (r === null) {
    throw new DenError("handshake_eof", "the peer closed the connection during the handshake");
  }
  return r;
}

export async function runInitiator(
  link: FrameLink,
  cfg: HandshakeConfig,
  timeoutMs: number,
): Promise<Established> {
  const deadline = Date.now() + timeoutMs;
  const hs = new InitiatorHandshake(cfg);
  await link.write(await hs.start());
  const { reply, established } = await hs.finish(
    await readBefore(link, MAX_HANDSHAKE_MESSAGE, deadline),
  );
  await link.write(reply);
  return established;
}

/** `first` is M1 when the caller already read it (to tell a handshake from an attach). */
export async function runResponder(
  link: FrameLink,
  cfg: HandshakeConfig,
  timeoutMs: number,
  first?: Uint8Array,
): Promise<Established> {
  const deadline = Date.now() + timeoutMs;
  const hs = new ResponderHandshake(cfg);
  const m1 = first ?? await readBefore(link, MAX_HANDSHAKE_MESSAGE, deadline);
  await link.write(await hs.respond(m1));
  return await hs.finish(await readBefore(link, MAX_HANDSHAKE_MESSAGE, deadline));
}

export interface SessionEvents {
  onMessage(type: number, payload: Uint8Array): void;
  /** Called once when the read loop ends: `error` is why (null for a clean end of stream). */
  onEnd(error: unknown): void;
}

/**
 * Records over a link. Writes are queued so frames never interleave and stay in seal order, also
 * across a path switch: the switch record is the last one sealed for the old link.
 */
export class SessionConn {
  readonly established: Established;
  readonly initiator: boolean;
  readonly #now: () => number;
  #tx: FrameLink;
  #rx: FrameLink;
  /** Attached and sent to; read from once the peer's switch record arrives. */
  #next: FrameLink | null = null;
  #nextReady: (() => void) | null = null;
  /** Old links whose last writes (ending with the switch record) are still going out. */
  readonly #draining = new Set<FrameLink>();
  #retiredRead = 0;
  #retiredWritten = 0;
  #writeChain: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(
    link: FrameLink,
    established: Established,
    initiator: boolean,
    now: () => number,
  ) {
    this.#tx = link;
    this.#rx = link;
    this.established = established;
    this.initiator = initiator;
    this.#now = now;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The path records are sent on now. */
  get transport(): LinkKind {
    return this.#tx.kind;
  }

  get remote(): string {
    return this.#tx.remote;
  }

  /** True while a move to another link is under way (one at a time). */
  get moving(): boolean {
    return this.#next !== null || this.#tx !== this.#rx;
  }

  #links(): FrameLink[] {
    return [
      ...new Set([this.#tx, this.#rx, ...(this.#next ? [this.#next] : []), ...this.#draining]),
    ];
  }

  get bytesRead(): number {
    return this.#links().reduce((n, l) => n + l.bytesRead, this.#retiredRead);
  }

  get bytesWritten(): number {
    return this.#links().reduce((n, l) => n + l.bytesWritten, this.#retiredWritten);
  }

  /** Seals now (so record order is call order) and queues the write. */
  send(type: number, payload: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const record = this.established.sender.seal(type, payload, this.#now());
    const link = this.#tx;
    this.#writeChain = this.#writeChain.then(() => this.#closed ? undefined : link.write(record))
      .catch(() => this.close());
    return this.#writeChain;
  }

  /**
   * Moves the session to `link`, which the attach protocol has bound to it: a switch record goes
   * out last on the old link, every later record on the new one; reading follows when the peer's
   * switch record arrives. The old link closes once both directions have left it.
   */
  moveTo(link: FrameLink): void {
    if (this.#closed) return link.close();
    if (this.moving) throw new DenError("path_busy", "the session is already moving");
    const old = this.#tx;
    this.#next = link;
    this.#draining.add(old);
    this.send(MsgType.pathSwitch, EMPTY).then(() => {
      this.#draining.delete(old);
      this.#retireIfUnused(old);
    });
    this.#tx = link;
    this.#nextReady?.();
  }

  #retireIfUnused(link: FrameLink): void {
    if (this.#closed || this.#links().includes(link)) return;
    this.#retiredRead += link.bytesRead;
    this.#retiredWritten += link.bytesWritten;
    link.close();
  }

  /** The peer switched: read from the attached link from now on (waiting for it if need be). */
  async #followSwitch(): Promise<void> {
    if (!this.#next) {
      const arrived = new Promise<void>((resolve) => this.#nextReady = resolve);
      const r = await raceTimeout(arrived, SWITCH_WAIT_MS);
      this.#nextReady = null;
      if (r === TIMED_OUT || !this.#next) {
        throw new DenError("path_switch", "the peer switched to a connection that never attached");
      }
    }
    const old = this.#rx;
    this.#rx = this.#next;
    this.#next = null;
    this.#retireIfUnused(old);
  }

  /** Reads until the stream ends or a record fails to open; never throws. */
  async run(events: SessionEvents): Promise<void> {
    let error: unknown = null;
    try {
      while (!this.#closed) {
        const frame = await this.#rx.read(MAX_RECORD_FRAME);
        if (frame === null) break;
        const { type, payload } = this.established.receiver.open(frame);
        if (type === MsgType.pathSwitch) await this.#followSwitch();
        else events.onMessage(type, payload);
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
    for (const l of this.#links()) l.close();
    this.#nextReady?.();
  }
}
