/** What services (teams, secrets, chat) need from the peer manager: a narrow seam to test on. */
import type { PeerRef, ServiceHandler } from "./manager.ts";

export interface PeerBus {
  send(fingerprint: string, type: number, payload: Uint8Array): boolean;
  onMessage(type: number, handler: ServiceHandler): void;
  onConnected(handler: (peer: PeerRef) => void): void;
  onDisconnected(handler: (fingerprint: string) => void): void;
  connectedPeers(): PeerRef[];
}
