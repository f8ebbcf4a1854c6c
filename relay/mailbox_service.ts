/** Mailboxes on the wire: binary frames in, MailboxRegistry actions out, signatures checked. */
import { toHex } from "../src/crypto/encoding.ts";
import { randomBytes } from "../src/crypto/random.ts";
import type { Logger } from "../src/log/logger.ts";
import { type AuthFrame, encodeError, NONCE_BYTES, verifyAuth } from "../src/wire/relay_mailbox.ts";
import { type MailboxAction, MailboxRegistry } from "./mailboxes.ts";
import type { RelayMetrics } from "./metrics.ts";
import type { ConnId } from "./rooms.ts";
import { closeCodeFor, type RelayClient, type RelayService } from "./service.ts";
import { CloseCode } from "./ws/frames.ts";
import type { WsMessage } from "./ws/conn.ts";

export class MailboxService implements RelayService {
  readonly registry: MailboxRegistry;
  readonly #clients: ReadonlyMap<ConnId, RelayClient>;
  readonly #metrics: RelayMetrics;
  readonly #log: Logger;

  constructor(
    clients: ReadonlyMap<ConnId, RelayClient>,
    metrics: RelayMetrics,
    log: Logger,
    reflector: readonly [number, number] | null = null,
  ) {
    this.registry = new MailboxRegistry(reflector);
    this.#clients = clients;
    this.#metrics = metrics;
    this.#log = log;
  }

  open(c: RelayClient): void {
    this.#run(this.registry.open(c.id, randomBytes(NONCE_BYTES)));
  }

  started(c: RelayClient): boolean {
    return this.registry.authStarted(c.id);
  }

  message(c: RelayClient, msg: WsMessage): void {
    if (msg.type === "text") {
      return this.fail(c, 400, "mailboxes take binary frames only", "text_in_mailbox");
    }
    this.#run(this.registry.message(c.id, msg.data));
  }

  closed(c: RelayClient): void {
    this.registry.close(c.id);
  }

  fail(c: RelayClient, code: number, message: string, reason: string, wsCode?: number): void {
    this.#metrics.dropped(reason);
    c.ws.sendBinary(encodeError(code, message));
    c.ws.close(wsCode ?? closeCodeFor(code), message);
  }

  #run(actions: MailboxAction[]): void {
    for (const a of actions) {
      if (a.kind === "verify") {
        this.#verify(a.conn, a.auth, a.nonce);
        continue;
      }
      const to = this.#clients.get(a.to);
      if (to === undefined) continue;
      if (a.kind === "deliver") {
        if (to.ws.sendBinary(a.header, a.payload)) {
          this.#metrics.forwarded("mailbox", a.payload.length);
        }
      } else if (a.kind === "send") {
        to.ws.sendBinary(a.frame);
        if (a.dropped) this.#metrics.dropped(a.dropped);
      } else {
        this.fail(to, a.code, a.message, a.reason);
      }
    }
  }

  /** Runs outside the read loop's guard, so it keeps its own: a failure closes one client. */
  async #verify(conn: ConnId, auth: AuthFrame, nonce: Uint8Array): Promise<void> {
    try {
      const id = await verifyAuth(auth, nonce);
      if (id !== null) this.#log.debug("mailbox ready", { mailbox: toHex(id) });
      this.#run(this.registry.verified(conn, id));
    } catch (err) {
      this.#metrics.dropped("internal");
      this.#log.warn("mailbox authentication failed unexpectedly", { error: String(err) });
      this.#clients.get(conn)?.ws.close(CloseCode.internal, "internal error");
    }
  }
}
