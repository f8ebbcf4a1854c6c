/**
 * Relay fallback for peer sessions: keeps this node's mailbox open at every configured relay and
 * carries relay links (docs/RELAY.md) through them, outbound to a peer's mailbox and inbound from
 * any peer. Which peer is at the other end is for the session handshake to prove, not the relay.
 */
import { fromBase32, toHex } from "../../crypto/encoding.ts";
import { randomBytes } from "../../crypto/random.ts";
import type { Identity } from "../../identity/keys.ts";
import type { Logger } from "../../log/logger.ts";
import {
  decodeLinkMessage,
  encodeLinkClose,
  LINK_ID_BYTES,
  maxLinkChunk,
} from "../../wire/relay_link.ts";
import { mailboxId, MAX_MAILBOX_PAYLOAD } from "../../wire/relay_mailbox.ts";
import { MailboxClient, type MailboxState } from "./mailbox_client.ts";
import { type LinkCarrier, RelayLink } from "./relay_link.ts";

export interface RelayStatus {
  url: string;
  state: MailboxState;
  reason: string | null;
  links: number;
  /** The relay's UDP reflector ports (docs/NAT.md), null when it runs none. */
  reflector: [number, number] | null;
}

export interface RelayTransportOptions {
  identity: Identity;
  log: Logger;
  /** The largest frame a link must carry (a session record). */
  frameLimit: number;
  /** A peer opened a link to us: run the responder handshake on it. `from` names its mailbox. */
  onInbound(link: RelayLink, from: string): void;
  /** A mailbox became ready: peers can be tried through it now. */
  onReady(): void;
  random?: () => number;
}

/** Unsent bytes at which a link's writer waits for the WebSocket to drain. */
const HIGH_WATER = 1024 * 1024;
const MAX_LINKS_PER_RELAY = 256;
/** A relay that said "no route" for a peer is skipped for that peer this long. */
const ABSENT_MS = 10_000;
const MAX_CHUNK = maxLinkChunk(MAX_MAILBOX_PAYLOAD);

interface Relay {
  client: MailboxClient;
  links: Map<string, { link: RelayLink; peer: string }>;
  absent: Map<string, number>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class RelayTransport {
  readonly #o: RelayTransportOptions;
  readonly #relays = new Map<string, Relay>();

  constructor(opts: RelayTransportOptions) {
    this.#o = opts;
  }

  /** Opens mailboxes at new URLs and closes those no longer listed. */
  setUrls(urls: string[]): void {
    for (const [url, r] of this.#relays) {
      if (!urls.includes(url)) {
        r.client.stop();
        this.#relays.delete(url);
      }
    }
    for (const url of urls) {
      if (this.#relays.has(url)) continue;
      const relay: Relay = { client: null!, links: new Map(), absent: new Map() };
      relay.client = new MailboxClient({
        url,
        identity: this.#o.identity,
        log: this.#o.log,
        random: this.#o.random,
        onDeliver: (src, payload) => this.#deliver(relay, src, payload),
        onNoRoute: (dst) => this.#noRoute(relay, toHex(dst)),
        onDown: (reason) => this.#down(relay, reason),
        onReady: () => this.#o.onReady(),
      });
      this.#relays.set(url, relay);
      relay.client.start();
    }
  }

  get configured(): boolean {
    return this.#relays.size > 0;
  }

  list(): RelayStatus[] {
    return [...this.#relays.values()].map((r) => ({
      url: r.client.url,
      state: r.client.state,
      reason: r.client.reason,
      links: r.links.size,
      reflector: r.client.reflector,
    }));
  }

  /** A new link to the peer with this fingerprint through the first relay that may reach it. */
  open(fingerprint: string): RelayLink | null {
    const dst = mailboxId(fromBase32(fingerprint));
    const peer = toHex(dst);
    const now = performance.now();
    for (const r of this.#relays.values()) {
      if (r.client.state !== "ready" || r.links.size >= MAX_LINKS_PER_RELAY) continue;
      const absentAt = r.absent.get(peer);
      if (absentAt !== undefined && now - absentAt < ABSENT_MS) continue;
      return this.#link(r, dst, peer, randomBytes(LINK_ID_BYTES));
    }
    return null;
  }

  stop(): void {
    for (const r of this.#relays.values()) r.client.stop();
    this.#relays.clear();
  }

  #link(r: Relay, dst: Uint8Array, peer: string, id: Uint8Array): RelayLink {
    const key = `${peer}:${toHex(id)}`;
    const client = r.client;
    const carrier: LinkCarrier = {
      url: client.url,
      maxChunk: MAX_CHUNK,
      send: (payload) => client.send(dst, payload),
      // WebSocket has no "drain" event: poll bufferedAmount while it is above the mark.
      drained: async () => {
        while (client.bufferedAmount > HIGH_WATER && client.state === "ready") await sleep(2);
      },
      detach: () => {
        if (r.links.get(key)?.link === link) r.links.delete(key);
      },
    };
    const link = new RelayLink(id, carrier, this.#o.frameLimit);
    r.links.set(key, { link, peer });
    return link;
  }

  #deliver(r: Relay, src: Uint8Array, payload: Uint8Array): void {
    const msg = decodeLinkMessage(payload);
    if (!msg) return; // not a link message: nothing a peer session could use
    const peer = toHex(src);
    const key = `${peer}:${toHex(msg.id)}`;
    const known = r.links.get(key)?.link;
    if (msg.kind === "close") return known?.end();
    if (known) return known.deliver(msg.more, msg.chunk);
    // Handshake rates per peer mailbox are the peer manager's (as per address on TCP).
    if (r.links.size >= MAX_LINKS_PER_RELAY) {
      r.client.send(src, encodeLinkClose(msg.id)); // refused: the opener sees the link end
      return;
    }
    const link = this.#link(r, src.slice(), peer, msg.id.slice());
    link.deliver(msg.more, msg.chunk);
    this.#o.onInbound(link, peer);
  }

  #noRoute(r: Relay, peer: string): void {
    r.absent.set(peer, performance.now());
    for (const { link, peer: p } of [...r.links.values()]) {
      if (p === peer) {
        link.fail(
          new Deno.errors.ConnectionRefused(`the peer is not connected to ${r.client.url}`),
        );
      }
    }
  }

  #down(r: Relay, reason: string): void {
    for (const { link } of [...r.links.values()]) {
      link.fail(new Deno.errors.ConnectionReset(`relay ${r.client.url}: ${reason}`));
    }
  }
}
