/** What `den peers --json` shows for one peer (field names fixed by DESIGN.md §2). */
import type { LinkKind } from "../transport/link.ts";

export type PeerState = "connecting" | "connected" | "down" | "refused";

export interface PeerView {
  name: string;
  fingerprint: string | null;
  address: string | null;
  state: PeerState;
  reason: string | null;
  transport: LinkKind | null;
  /** Where the session runs now: "HOST:PORT", or the relay's URL. */
  path: string | null;
  rtt_ms: number | null;
  last_seen: string | null;
  bytes_in: number;
  bytes_out: number;
  /** The fingerprint a refused peer presented, when it differs from the trusted one. */
  presented_fingerprint: string | null;
  pinned: boolean;
  direction: "outbound" | "inbound" | null;
  shared_teams: string[];
  /** How VPN packets reach the peer: "udp" (direct), else the session's transport; null off. */
  data_path?: string | null;
  /**
   * NAT traversal (docs/NAT.md): both sides' NAT types, and whether a direct UDP path is in use,
   * being tried, or impossible (and why); null without a session or a data plane.
   */
  nat?: {
    local: string;
    peer: string;
    direct: "udp" | "trying" | "impossible";
    why: string;
  } | null;
}
