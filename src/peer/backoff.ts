/** Reconnect delays: exponential from `baseMs`, capped, with full jitter in the upper half. */
export interface BackoffOptions {
  baseMs?: number;
  capMs?: number;
}

export function backoffDelay(
  attempt: number,
  random: () => number,
  { baseMs = 500, capMs = 60_000 }: BackoffOptions = {},
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  // Half fixed, half random: peers that lost each other at the same moment spread out,
  // and no delay collapses to ~0.
  return Math.round(ceiling / 2 + random() * ceiling / 2);
}
