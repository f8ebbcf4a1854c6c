/**
 * Every default of config.toml, in one place. docs/CONFIG.md repeats these values;
 * tests/unit/config_test.ts checks that a minimal file comes out with exactly these.
 */

/** Peers talk to each other on this TCP and UDP port. */
export const PEER_PORT = 7834;
/** `den relay` listens here unless told otherwise. */
export const RELAY_PORT = 8765;
/** Prometheus metrics, on loopback only by default. */
export const METRICS_PORT = 9000;

export const DEFAULTS = Object.freeze({
  node: Object.freeze(
    {
      /** All interfaces, so LAN peers and port forwards reach this node. */
      listen: `0.0.0.0:${PEER_PORT}`,
      /** Loopback only: metrics are not for the network unless asked for. */
      metrics: `127.0.0.1:${METRICS_PORT}`,
      /** Human-readable lines; "json" for log collectors. */
      log_format: "text",
      /** Lifecycle and problems, not per-packet detail. */
      log_level: "info",
    } as const,
  ),
  relay: Object.freeze({
    /** No relay: peers must reach each other directly. */
    urls: Object.freeze([] as string[]),
  }),
  /** Per network, i.e. each `[networks.NAME]`. */
  networks: Object.freeze(
    {
      /** RFC 6598 shared address space, unlikely to clash with home and office LANs. */
      prefix: "100.64.0.0/10",
      /** Derived from network name + fingerprint inside the prefix. */
      address: "auto",
      /** Announce this node's routes (its address and `routes`) to peers. */
      export: true,
      /** No subnets behind this node: only its own address is reachable. */
      routes: Object.freeze([] as string[]),
      /** Fits inside a 1500-byte path after encryption and UDP/IP overhead. */
      mtu: 1380,
    } as const,
  ),
});
