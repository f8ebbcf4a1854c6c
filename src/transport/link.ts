/**
 * A frame link: an ordered, reliable stream of frames between two nodes. A peer session runs on
 * one (the handshake, then records) and can move to another (docs/PROTOCOL.md, "Path attach").
 * TCP (FramedConn) and relay links (src/transport/relay) implement it.
 */
export type LinkKind = "tcp" | "relay";

export interface FrameLink {
  readonly kind: LinkKind;
  /** Where the other end is, for people: "203.0.113.7:7834", or the relay's URL. */
  readonly remote: string;
  /** The next frame; null when the link ended cleanly between frames. Throws past `limit`. */
  read(limit: number): Promise<Uint8Array | null>;
  write(frame: Uint8Array): Promise<void>;
  close(): void;
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

/** A frame longer than the reader allows: the link is dropped before the frame is buffered. */
export class FrameTooLarge extends Error {
  constructor(readonly size: number, readonly limit: number) {
    super(`frame of ${size} bytes exceeds the limit of ${limit}`);
  }
}
