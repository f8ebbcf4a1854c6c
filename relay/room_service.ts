/** Chat rooms on the wire: text frames in, RoomRegistry actions out. */
import { encodeRoomError } from "../src/wire/relay_rooms.ts";
import type { RelayMetrics } from "./metrics.ts";
import { type ConnId, type RoomAction, RoomRegistry } from "./rooms.ts";
import { closeCodeFor, type RelayClient, type RelayService } from "./service.ts";
import type { WsMessage } from "./ws/conn.ts";

export class RoomService implements RelayService {
  readonly registry: RoomRegistry;
  readonly #clients: ReadonlyMap<ConnId, RelayClient>;
  readonly #metrics: RelayMetrics;

  constructor(clients: ReadonlyMap<ConnId, RelayClient>, metrics: RelayMetrics, maxRooms: number) {
    this.#clients = clients;
    this.#metrics = metrics;
    this.registry = new RoomRegistry(maxRooms);
  }

  open(): void {}

  started(c: RelayClient): boolean {
    return this.registry.joined(c.id);
  }

  message(c: RelayClient, msg: WsMessage): void {
    if (msg.type === "binary") {
      return this.fail(c, 400, "rooms take text frames only", "binary_in_room");
    }
    this.#run(msg.data, this.registry.message(c.id, msg.text));
  }

  closed(c: RelayClient): void {
    this.#run(new Uint8Array(0), this.registry.leave(c.id));
  }

  fail(c: RelayClient, code: number, message: string, reason: string, wsCode?: number): void {
    this.#metrics.dropped(reason);
    c.ws.sendText(encodeRoomError(code, message));
    c.ws.close(wsCode ?? closeCodeFor(code), message);
  }

  /** `raw`: the message being handled, forwarded byte for byte. */
  #run(raw: Uint8Array, actions: RoomAction[]): void {
    for (const a of actions) {
      const to = this.#clients.get(a.to);
      if (to === undefined) continue;
      if (a.kind === "send") {
        to.ws.sendText(a.text);
      } else if (a.kind === "forward") {
        if (to.ws.sendText(raw)) this.#metrics.forwarded("room", raw.length);
      } else if (a.close) {
        this.fail(to, a.code, a.message, a.reason);
      } else {
        this.#metrics.dropped(a.reason);
        to.ws.sendText(encodeRoomError(a.code, a.message));
      }
    }
  }
}
