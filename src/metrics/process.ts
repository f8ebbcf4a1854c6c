/** Process-level metrics every den mode exports. */
import { VERSION } from "../version.ts";
import { BUILD_COMMIT } from "../build_info.ts";
import type { MetricsRegistry } from "./registry.ts";

export function registerProcessMetrics(reg: MetricsRegistry, startedAt: number): void {
  reg.gauge(
    "process_resident_memory_bytes",
    "Resident memory size in bytes.",
    () => Deno.memoryUsage().rss,
  );
  reg.gauge("process_heap_used_bytes", "V8 heap in use, bytes.", () => Deno.memoryUsage().heapUsed);
  reg.gauge(
    "process_start_time_seconds",
    "Start time since the epoch, seconds.",
    () => Math.floor(startedAt / 1000),
  );
  reg.gauge(
    "den_uptime_seconds",
    "Seconds since this den process started.",
    () => Math.floor((Date.now() - startedAt) / 1000),
  );
  reg.counter("den_build_info", "Build information (always 1).");
  reg.inc("den_build_info", { version: VERSION, commit: BUILD_COMMIT, deno: Deno.version.deno });
}
