/** Serves a MetricsRegistry as Prometheus text on HOST:PORT (GET /metrics). */
import type { MetricsRegistry } from "./registry.ts";
import { netAddrString } from "../util/net_addr.ts";

export interface MetricsServer {
  readonly address: string;
  close(): Promise<void>;
}

export function startMetricsServer(
  registry: MetricsRegistry,
  host: string,
  port: number,
): MetricsServer {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: host.replace(/^\[|\]$/g, ""), port, signal: ac.signal, onListen() {} },
    (req) => {
      const path = new URL(req.url).pathname;
      if (req.method !== "GET") return new Response("method not allowed\n", { status: 405 });
      if (path === "/metrics") {
        return new Response(registry.render(), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      }
      return new Response("den metrics: GET /metrics\n", { status: path === "/" ? 200 : 404 });
    },
  );
  const addr = server.addr as Deno.NetAddr;
  return {
    address: netAddrString(addr),
    async close() {
      ac.abort();
      await server.finished;
    },
  };
}
