/** What the server needs from each kind of connection: chat rooms and mailboxes. */
import type { TokenBucket } from "../src/util/token_bucket.ts";
import type { ConnKind } from "./metrics.ts";
import type { ConnId } from "./rooms.ts";
import { CloseCode } from "./ws/frames.ts";
import type { WsConn, WsMessage } from "./ws/conn.ts";

export interface RelayClient {
  readonly id: ConnId;
  readonly kind: ConnKind;
  readonly ws: WsConn;
  /** Source address (after X-Forwarded-For from a trusted proxy). */
  readonly address: string;
  /** Messages this client may still send now (--room-rate, --mailbox-rate). */
  readonly bucket: TokenBucket;
}

export interface RelayService {
  open(c: RelayClient): void;
  message(c: RelayClient, msg: WsMessage): void;
  /** Whether the message the protocol starts with (JOIN, AUTH) has come. */
  started(c: RelayClient): boolean;
  /** Sends ERROR in this service's encoding, counts `reason`, and closes. */
  fail(c: RelayClient, code: number, message: string, reason: string, wsCode?: number): void;
  closed(c: RelayClient): void;
}

/** The WebSocket close code that goes with an ERROR code. */
export function closeCodeFor(errorCode: number): number {
  if (errorCode === 413) return CloseCode.tooBig;
  if (errorCode === 503) return CloseCode.tryAgain;
  return CloseCode.policy;
}
