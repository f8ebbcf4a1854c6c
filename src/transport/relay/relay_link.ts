/** One relay link (docs/RELAY.md, "Relay links") as a FrameLink: frames in order, chunked. */
import { DenError } from "../../errors.ts";
import {
  encodeLinkClose,
  encodeLinkData,
  FrameAssembler,
  splitFrame,
} from "../../wire/relay_link.ts";
import { type FrameLink, FrameTooLarge } from "../link.ts";

/** What a link needs from the mailbox it runs through. */
export interface LinkCarrier {
  readonly url: string;
  /** Queues a payload for the peer's mailbox; false when the relay connection is down. */
  send(payload: Uint8Array): boolean;
  /** Resolves when the relay connection has room for more (backpressure). */
  drained(): Promise<void>;
  /** The link is closed: forget it. */
  detach(): void;
  readonly maxChunk: number;
}

/** Frames received but not read yet: a reader that stalls this long loses the link. */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

export class RelayLink implements FrameLink {
  readonly kind = "relay";
  readonly id: Uint8Array;
  readonly #carrier: LinkCarrier;
  readonly #assembler = new FrameAssembler();
  readonly #frameLimit: number;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #waiter: (() => void) | null = null;
  #ended = false;
  #error: Error | null = null;
  bytesRead = 0;
  bytesWritten = 0;

  constructor(id: Uint8Array, carrier: LinkCarrier, frameLimit: number) {
    this.id = id;
    this.#carrier = carrier;
    this.#frameLimit = frameLimit;
  }

  get remote(): string {
    return this.#carrier.url;
  }

  /** A chunk arrived for this link. */
  deliver(more: boolean, chunk: Uint8Array): void {
    if (this.#ended) return;
    this.bytesRead += chunk.length;
    let frame: Uint8Array | null;
    try {
      frame = this.#assembler.push(more, chunk, this.#frameLimit);
    } catch (err) {
      return this.fail(err as Error);
    }
    if (!frame) return;
    this.#queued += frame.length;
    if (this.#queued > MAX_QUEUED_BYTES) {
      return this.fail(
        new DenError("relay_link_overrun", "the session fell behind its relay link"),
      );
    }
    this.#queue.push(frame);
    this.#wake();
  }

  /** The peer closed the link: readers see the end of the stream. */
  end(): void {
    this.#ended = true;
    this.#carrier.detach();
    this.#wake();
  }

  /** The link broke (relay down, peer not there, bad data): readers get the error. */
  fail(err: Error): void {
    if (this.#ended) return;
    this.#error = err;
    this.end();
  }

  async read(limit: number): Promise<Uint8Array | null> {
    while (this.#queue.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#waiter = resolve);
    }
    const frame = this.#queue.shift()!;
    this.#queued -= frame.length;
    if (frame.length > limit) throw new FrameTooLarge(frame.length, limit);
    return frame;
  }

  async write(frame: Uint8Array): Promise<void> {
    for (const { more, chunk } of splitFrame(frame, this.#carrier.maxChunk)) {
      if (this.#ended) throw this.#error ?? new Deno.errors.BrokenPipe("relay link closed");
      await this.#carrier.drained();
      if (!this.#carrier.send(encodeLinkData(this.id, more, chunk))) {
        this.fail(new Deno.errors.ConnectionReset(`relay ${this.#carrier.url} is not connected`));
        throw this.#error;
      }
      this.bytesWritten += chunk.length;
    }
  }

  close(): void {
    if (this.#ended) return;
    this.#carrier.send(encodeLinkClose(this.id));
    this.end();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }
}
