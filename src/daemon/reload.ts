/** Decides what a config change means for a running daemon (pure). */
import type { Config } from "../config/schema.ts";

export interface ReloadPlan {
  /** Sections whose new values the daemon takes on without restarting. */
  applied: string[];
  /** Keys whose new values take effect only after `den goodbye` and a fresh start. */
  restartRequired: string[];
  /** The config to run with: the new file, except restart-only keys keep their running values. */
  next: Config;
}

// Values bound into sockets or the logger at start; everything else is re-read live.
const RESTART_NODE_KEYS = ["name", "listen", "log_format", "log_level"] as const;
const LIVE_KEYS = ["node.metrics", "peers", "relay", "networks"] as const;

function pick(cfg: Config, key: string): unknown {
  // deno-lint-ignore no-explicit-any
  return key.split(".").reduce((v: any, k) => v?.[k], cfg);
}

function changed(a: Config, b: Config, key: string): boolean {
  return JSON.stringify(pick(a, key)) !== JSON.stringify(pick(b, key));
}

export function planReload(current: Config, loaded: Config): ReloadPlan {
  const node = { ...loaded.node };
  for (const k of RESTART_NODE_KEYS) Object.assign(node, { [k]: current.node[k] });
  return {
    applied: LIVE_KEYS.filter((k) => changed(current, loaded, k)),
    restartRequired: RESTART_NODE_KEYS.map((k) => `node.${k}`).filter((k) =>
      changed(current, loaded, k)
    ),
    next: { ...loaded, node },
  };
}
