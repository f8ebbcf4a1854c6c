/** Result shapes of control-socket methods, shared by the daemon (producer) and the CLI. */

export interface StatusResult {
  name: string;
  fingerprint: string;
  version: string;
  uptime_s: number;
  listen: string;
  metrics: string;
  pid: number;
  home: string | null;
  config: string;
  socket: string;
  counts: {
    peers: number;
    peers_connected: number;
    peers_configured: number;
    relays: number;
    networks: number;
    /** Teams this node is a member of, and secret ops stored for them. */
    teams: number;
    ops: number;
  };
  /** This node's mailbox at each configured relay. */
  relays: { url: string; state: "connecting" | "ready" | "down"; reason: string | null }[];
}

export interface ReloadResult {
  applied: string[];
  restart_required: string[];
}

export interface VerifyResult {
  name: string;
  fingerprint: string;
  words: string[];
}

export interface PingResult {
  name: string;
  /** Round trip through the session, ms. */
  rtt_ms: number;
  transport: "tcp" | "relay";
  /** "HOST:PORT", or the relay's URL. */
  path: string;
  bytes: number;
}
