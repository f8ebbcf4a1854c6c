/** Marker returned by raceTimeout when the time ran out first. */
export const TIMED_OUT: unique symbol = Symbol("timed out");

/** Resolves with p's value, or TIMED_OUT after ms; the timer never outlives the race. */
export async function raceTimeout<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<typeof TIMED_OUT>((r) => timer = setTimeout(() => r(TIMED_OUT), ms));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}
