/** What the daemon and its data-plane worker (worker.ts) tell each other over a MessagePort. */
import type { Cidr } from "../../config/validators.ts";

export interface WorkerInit {
  t: "init";
  /** The dlopened shim copy (shim_path.ts). */
  shimPath: string;
  /** "HOST:PORT" to bind the data-plane UDP socket to. */
  bind: string;
  port: MessagePort;
}

export type ToWorker =
  | { t: "net"; name: string; tag: Uint8Array; fd: number; mtu: number }
  | { t: "net_close"; name: string }
  | { t: "routes"; net: string; routes: { prefix: Cidr; peer: string; metric: number }[] }
  /** A receive slot: datagrams carrying `index` are opened with `key` and come from `peer`. */
  | { t: "slot"; peer: string; index: number; key: Uint8Array }
  /** The peer's current slot for us, and where to try reaching it. */
  | { t: "send"; peer: string; index: number; key: Uint8Array; candidates: string[] }
  | { t: "peer_gone"; peer: string }
  /** Ask these reflectors ("IP:PORT") which address our UDP socket has (docs/NAT.md). */
  | { t: "reflect"; id: number; targets: string[] }
  | { t: "stop" };

export interface NetCounters {
  packets_in: number;
  packets_out: number;
  bytes_in: number;
  bytes_out: number;
  drops: Record<string, number>;
}

export interface PeerPath {
  direct: boolean;
  endpoint: string | null;
  rtt_ms: number | null;
  /** Packets are batched into datagrams larger than the path MTU. */
  batched: boolean;
}

export type FromWorker =
  | { t: "ready"; local: string }
  | { t: "udp_failed"; error: string }
  /** Packets for a peer with no direct path: the daemon sends them through the session. */
  | { t: "session"; peer: string; net: string; packets: Uint8Array; lens: number[] }
  | { t: "path"; peer: string; path: PeerPath }
  | {
    t: "stats";
    nets: Record<string, NetCounters>;
    peers: Record<string, PeerPath>;
    /** Datagrams dropped before any network was known, by reason. */
    drops: Record<string, number>;
  }
  | { t: "net_closed"; name: string }
  /** The answer to "reflect" `id`: per target, the mapping it saw (null: no answer). */
  | { t: "reflexive"; id: number; results: { target: string; mapped: string | null }[] }
  | { t: "error"; message: string }
  /** The thread is about to exit (after "stop"). */
  | { t: "stopped" };
