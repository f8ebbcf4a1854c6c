/**
 * The relay's Prometheus families. Forwarding counts are kept as plain numbers on the hot path
 * (a labelled increment costs about 0.4 µs, too much at 250k frames/s) and folded into the
 * registry when it is rendered.
 */
import { registerProcessMetrics } from "../src/metrics/process.ts";
import { MetricsRegistry } from "../src/metrics/registry.ts";

export type ConnKind = "room" | "mailbox";

export interface RelayGauges {
  connections(): Record<ConnKind | "pending", number>;
  rooms(): number;
  mailboxes(): number;
}

const FORWARDED = "den_relay_frames_forwarded_total";
const FORWARDED_BYTES = "den_relay_bytes_forwarded_total";
const DROPPED = "den_relay_frames_dropped_total";
const REFUSED = "den_relay_connections_refused_total";
const ACCEPTED = "den_relay_connections_total";
const REFLECTED = "den_relay_reflector_answered_total";
const REFLECTOR_DROPPED = "den_relay_reflector_dropped_total";

export class RelayMetrics extends MetricsRegistry {
  readonly #pending = { room: { frames: 0, bytes: 0 }, mailbox: { frames: 0, bytes: 0 } };

  constructor(gauges: RelayGauges, startedAt = Date.now()) {
    super();
    registerProcessMetrics(this, startedAt);
    this.gauge(
      "den_relay_connections",
      "Open connections by kind (pending: HTTP request not yet answered).",
      () => Object.entries(gauges.connections()).map(([kind, n]) => [{ kind }, n]),
    );
    this.counter(ACCEPTED, "WebSocket connections accepted, by kind.");
    this.counter(REFUSED, "Connections refused before or at the upgrade, by reason.");
    this.gauge("den_relay_rooms", "Chat rooms that exist now.", gauges.rooms);
    this.gauge("den_relay_mailboxes", "Mailboxes connected now.", gauges.mailboxes);
    this.counter(FORWARDED, "Frames forwarded, by kind.");
    this.counter(FORWARDED_BYTES, "Payload bytes forwarded, by kind.");
    this.counter(DROPPED, "Frames dropped or connections ended for cause, by reason.");
    this.counter(REFLECTED, "UDP reflector requests answered.");
    this.counter(REFLECTOR_DROPPED, "UDP reflector datagrams dropped, by reason.");
  }

  reflectorAnswered(): void {
    this.inc(REFLECTED, {});
  }

  reflectorDropped(reason: string): void {
    this.inc(REFLECTOR_DROPPED, { reason });
  }

  forwarded(kind: ConnKind, bytes: number): void {
    const p = this.#pending[kind];
    p.frames++;
    p.bytes += bytes;
  }

  dropped(reason: string): void {
    this.inc(DROPPED, { reason });
  }

  refused(reason: string): void {
    this.inc(REFUSED, { reason });
  }

  accepted(kind: ConnKind): void {
    this.inc(ACCEPTED, { kind });
  }

  override render(): string {
    for (const kind of ["room", "mailbox"] as const) {
      const p = this.#pending[kind];
      if (p.frames > 0) this.inc(FORWARDED, { kind }, p.frames);
      if (p.bytes > 0) this.inc(FORWARDED_BYTES, { kind }, p.bytes);
      p.frames = p.bytes = 0;
    }
    return super.render();
  }
}
