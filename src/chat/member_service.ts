/**
 * Team chat in the daemon: messages to and from teammates over their peer sessions, held in
 * memory only until a `den chat @MEMBER` window reads them (docs/CHAT.md, "Team chat").
 */
import { toHex } from "../crypto/encoding.ts";
import { randomBytes } from "../crypto/random.ts";
import { DenError, Exit } from "../errors.ts";
import type { Logger } from "../log/logger.ts";
import type { PeerBus } from "../peer/bus.ts";
import type { PeerRef } from "../peer/manager.ts";
import type { PeerView } from "../peer/view.ts";
import { KeyedBuckets } from "../util/token_bucket.ts";
import {
  ChatMsgType,
  decodeChatAck,
  decodeChatMessage,
  encodeChatAck,
  encodeChatMessage,
} from "../wire/member_chat.ts";
import { charCount, MAX_MESSAGE_CHARS } from "./states.ts";

export interface ChatLine {
  seq: number;
  text: string;
  at: string;
}

export interface ChatPoll {
  peer: string;
  fingerprint: string;
  online: boolean;
  messages: ChatLine[];
  /** The highest seq this answer covers: the next poll's `after`. */
  last: number;
}

export interface ChatSendResult {
  peer: string;
  /** A chat window for us was open on their side and showed it. */
  shown: boolean;
}

export interface MemberChatOptions {
  bus: PeerBus;
  peers: () => PeerView[];
  log: Logger;
  now?: () => number;
  ackTimeoutMs?: number;
}

/** Messages kept per teammate until read; older ones are dropped first. */
export const INBOX_LIMIT = 200;
/**
 * A window is open while its long poll waits, or polled this recently (between two polls; it
 * polls again at once).
 */
const WINDOW_OPEN_MS = 3000;
const MAX_WAIT_MS = 25_000;

interface Inbox {
  lines: ChatLine[];
  nextSeq: number;
  /** Highest seq a window has read: a new window starts after it. */
  read: number;
  polledAt: number;
  waiters: Set<() => void>;
}

export class MemberChatService {
  readonly #o: Required<Omit<MemberChatOptions, "log">> & { log: Logger };
  readonly #inboxes = new Map<string, Inbox>();
  readonly #acks = new Map<string, (shown: boolean) => void>();
  /** Incoming messages per peer: 30 at once, 10 a second. */
  readonly #rate = new KeyedBuckets(30, 10, 1024);
  /** Outgoing messages per peer, paced below that limit (with a margin for jitter). */
  readonly #outRate = new KeyedBuckets(25, 8, 1024);
  #closed = false;

  constructor(o: MemberChatOptions) {
    this.#o = { now: Date.now, ackTimeoutMs: 5000, ...o };
    o.bus.onMessage(ChatMsgType.message, (from, payload) => this.#onMessage(from, payload));
    o.bus.onMessage(ChatMsgType.ack, (_from, payload) => {
      const ack = decodeChatAck(payload);
      if (ack) this.#acks.get(toHex(ack.id))?.(ack.shown);
    });
    // Presence changes answer a waiting poll at once, so a window says "offline" promptly.
    o.bus.onConnected((peer) => this.#wake(peer.fingerprint));
    o.bus.onDisconnected((fingerprint) => this.#wake(fingerprint));
  }

  /** A peer by name, full fingerprint or a fingerprint prefix of 6 or more characters. */
  resolve(member: string): PeerView & { fingerprint: string } {
    const all = this.#o.peers().filter((p): p is PeerView & { fingerprint: string } =>
      p.fingerprint !== null
    );
    const byName = all.filter((p) => p.name === member);
    const hits = byName.length > 0
      ? byName
      : member.length >= 6
      ? all.filter((p) => p.fingerprint.startsWith(member.toLowerCase()))
      : [];
    if (hits.length === 1) return hits[0];
    throw new DenError(
      "no_such_peer",
      hits.length === 0
        ? `no teammate or peer called ${member}`
        : `${member} matches ${hits.length} peers`,
      { exit: Exit.usage, hint: "den peers lists names; use a longer fingerprint prefix" },
    );
  }

  async send(member: string, text: string): Promise<ChatSendResult> {
    const peer = this.resolve(member);
    const chars = charCount(text);
    if (chars === 0 || chars > MAX_MESSAGE_CHARS) {
      throw new DenError("bad_message", `a message has 1 to ${MAX_MESSAGE_CHARS} characters`, {
        exit: Exit.usage,
      });
    }
    while (!this.#outRate.take(peer.fingerprint, this.#o.now())) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const id = randomBytes(8);
    const key = toHex(id);
    const acked = new Promise<boolean | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), this.#o.ackTimeoutMs);
      this.#acks.set(key, (shown) => {
        clearTimeout(timer);
        resolve(shown);
      });
    });
    try {
      if (!this.#o.bus.send(peer.fingerprint, ChatMsgType.message, encodeChatMessage(id, text))) {
        throw offline(peer.name);
      }
      const shown = await acked;
      if (shown === null) {
        throw new DenError("not_delivered", `${peer.name} did not confirm the message in time`, {
          hint: "it may or may not have arrived; den peers shows the session",
        });
      }
      return { peer: peer.name, shown };
    } finally {
      this.#acks.get(key)?.(false);
      this.#acks.delete(key);
    }
  }

  /**
   * Messages from `member` after `after` (default: the ones no window has read yet), waiting up
   * to `waitMs` for one to arrive. Polling is what marks a window as open.
   */
  async poll(member: string, after: number | undefined, waitMs: number): Promise<ChatPoll> {
    const peer = this.resolve(member);
    const box = this.#inbox(peer.fingerprint);
    box.polledAt = this.#o.now();
    const since = after ?? box.read;
    if (!box.lines.some((l) => l.seq > since) && waitMs > 0 && !this.#closed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          box.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(waitMs, MAX_WAIT_MS));
        box.waiters.add(done);
      });
      box.polledAt = this.#o.now();
    }
    const messages = box.lines.filter((l) => l.seq > since);
    if (messages.length > 0) box.read = Math.max(box.read, messages[messages.length - 1].seq);
    const online = this.#o.bus.connectedPeers().some((p) => p.fingerprint === peer.fingerprint);
    const last = messages.length > 0 ? messages[messages.length - 1].seq : since;
    return { peer: peer.name, fingerprint: peer.fingerprint, online, messages, last };
  }

  /** Ends every waiting poll (the daemon is stopping). */
  close(): void {
    this.#closed = true;
    for (const box of this.#inboxes.values()) for (const w of [...box.waiters]) w();
  }

  #wake(fingerprint: string): void {
    const box = this.#inboxes.get(fingerprint);
    if (box) { for (const w of [...box.waiters]) w(); }
  }

  #inbox(fingerprint: string): Inbox {
    let box = this.#inboxes.get(fingerprint);
    if (!box) {
      box = { lines: [], nextSeq: 1, read: 0, polledAt: -Infinity, waiters: new Set() };
      this.#inboxes.set(fingerprint, box);
    }
    return box;
  }

  #onMessage(from: PeerRef, payload: Uint8Array): void {
    const msg = decodeChatMessage(payload);
    if (!msg) {
      this.#o.log.warn("chat message refused: malformed", { peer: from.name });
      return;
    }
    if (!this.#rate.take(from.fingerprint, this.#o.now())) {
      this.#o.log.warn("chat message refused: too many", { peer: from.name });
      return;
    }
    const box = this.#inbox(from.fingerprint);
    box.lines.push({
      seq: box.nextSeq++,
      text: msg.text,
      at: new Date(this.#o.now()).toISOString(),
    });
    if (box.lines.length > INBOX_LIMIT) box.lines.splice(0, box.lines.length - INBOX_LIMIT);
    const shown = box.waiters.size > 0 || this.#o.now() - box.polledAt < WINDOW_OPEN_MS;
    this.#wake(from.fingerprint);
    this.#o.bus.send(from.fingerprint, ChatMsgType.ack, encodeChatAck(msg.id, shown));
  }
}

function offline(name: string): DenError {
  return new DenError("peer_offline", `${name} is offline: the message was not sent`, {
    hint: `team chat reaches a teammate only while both daemons are connected; den peers shows ` +
      `why ${name} is not`,
  });
}
