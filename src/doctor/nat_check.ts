/**
 * `den doctor`'s NAT check (docs/NAT.md): reads a configured relay's reflector ports from the
 * `den-reflector` header of its plain HTTP answer, asks both ports from one UDP socket which
 * address they see, and says what kind of NAT this machine is behind and what that means for
 * direct VPN paths. (The daemon does the same from its data-plane socket; this is a check.)
 */
import { parseHostPort } from "../config/validators.ts";
import { netAddrString } from "../util/net_addr.ts";
import { classifyNat, localEndpoints, type NatResult, reflectorEndpoints } from "../vpn/nat.ts";
import { ReflectJob, type ReflectResult } from "../vpn/dataplane/reflect.ts";
import { parseReflectorHeader, REFLECTOR_HEADER } from "../wire/reflector.ts";
import type { CheckResult } from "./checks.ts";

const check = "nat";

export async function natCheck(relayUrls: string[]): Promise<CheckResult> {
  if (relayUrls.length === 0) {
    return {
      check,
      status: "ok",
      detail: "no relay configured: cannot tell (a relay's reflector is needed for NAT traversal)",
    };
  }
  for (const url of relayUrls) {
    const targets = await reflectorOf(url);
    if (!targets) continue;
    const { results, bound } = await probe(targets);
    const locals = localEndpoints(bound, Deno.networkInterfaces().map((i) => i.address));
    return verdict(url, classifyNat(locals, results));
  }
  return {
    check,
    status: "warn",
    detail: "no relay with a reflector configured: cannot tell",
    fix: "run den relay with its UDP reflector (default: UDP on the listen port and the next), " +
      "and open those UDP ports in its firewall",
  };
}

function verdict(url: string, nat: NatResult): CheckResult {
  switch (nat.type) {
    case "open":
      return {
        check,
        status: "ok",
        detail: `open: no NAT (${nat.public}): direct paths to every peer`,
      };
    case "cone":
      return {
        check,
        status: "ok",
        detail: `cone NAT at ${nat.public}: direct paths to most peers`,
      };
    case "symmetric":
      return {
        check,
        status: "warn",
        detail: `symmetric NAT (${nat.mapped.join(", ")}): direct paths only to peers without ` +
          `NAT; VPN traffic to others goes through the relay`,
        fix: "a port forward for the peer port (or a router with a cone NAT) enables direct paths",
      };
    case "blocked":
      return {
        check,
        status: "warn",
        detail:
          `UDP blocked: ${url}'s reflector did not answer; VPN traffic goes through the relay`,
        fix: "allow outgoing UDP (the relay's reflector ports, and peers' port 7834)",
      };
    default:
      return {
        check,
        status: "warn",
        detail: `only one reflector port of ${url} answered (${nat.mapped.join(", ") || "-"}): ` +
          `cannot tell`,
      };
  }
}

/** The two reflector endpoints of a relay, from its HTTP answer's header; null without one. */
async function reflectorOf(url: string): Promise<string[] | null> {
  let ports: [number, number] | null;
  try {
    const res = await fetch(url.replace(/^ws/, "http"), { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    ports = parseReflectorHeader(res.headers.get(REFLECTOR_HEADER));
  } catch {
    return null;
  }
  if (!ports) return null;
  const endpoints = await reflectorEndpoints(url, ports, null);
  return endpoints.length > 0 ? endpoints : null;
}

/** Asks the targets from one fresh UDP socket (three tries over 1.5 s). */
async function probe(targets: string[]): Promise<{ results: ReflectResult[]; bound: string }> {
  const v6 = targets[0].startsWith("[");
  const sock = Deno.listenDatagram({ hostname: v6 ? "::" : "0.0.0.0", port: 0, transport: "udp" });
  const port = (sock.addr as Deno.NetAddr).port;
  const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
  const job = new ReflectJob(targets, performance.now(), random);
  const receiving = (async () => {
    for (;;) {
      const [data, addr] = await sock.receive();
      job.onResponse(data, netAddrString(addr as Deno.NetAddr), performance.now());
    }
  })().catch(() => {});
  try {
    while (!job.done(performance.now())) {
      for (const { to, request } of job.due(performance.now())) {
        const { host, port } = parseHostPort(to);
        await sock.send(request, { transport: "udp", hostname: host, port }).catch(() => {});
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    sock.close();
    await receiving;
  }
  return { results: job.results(), bound: v6 ? `[::]:${port}` : `0.0.0.0:${port}` };
}
