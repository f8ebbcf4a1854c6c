/**
 * Where team and secrets sync messages come in: each is decoded (a malformed one is dropped and
 * counted) and handled through one queue, in arrival order.
 */
import type { Logger } from "../log/logger.ts";
import type { MetricsRegistry } from "../metrics/registry.ts";
import { SerialQueue } from "../util/serial_queue.ts";
import { decodeSync, type SyncMessage } from "../wire/sync.ts";
import type { PeerBus } from "./bus.ts";
import type { PeerRef } from "./manager.ts";

export class SyncInbox {
  constructor(
    readonly bus: PeerBus,
    readonly metrics: MetricsRegistry,
    readonly log: Logger,
    readonly queue = new SerialQueue(),
  ) {
    metrics.counter("den_sync_messages_dropped_total", "Sync messages dropped, by reason.");
  }

  on(type: number, what: string, fn: (from: PeerRef, msg: SyncMessage) => unknown): void {
    this.bus.onMessage(type, (from, payload) => {
      let msg: SyncMessage;
      try {
        msg = decodeSync(payload);
      } catch {
        return this.drop("malformed");
      }
      this.queue.push(
        () => fn(from, msg),
        (err) => this.log.warn(`${what} sync failed`, { peer: from.name, error: String(err) }),
      );
    });
  }

  drop(reason: string): void {
    this.metrics.inc("den_sync_messages_dropped_total", { reason });
  }
}
