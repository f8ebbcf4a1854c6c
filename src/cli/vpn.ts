/** `den vpn status` and `den routes`: the VPN's networks and the routes learned from peers. */
import { callDaemon } from "../ipc/client.ts";
import type { RouteView, VpnStatus } from "../vpn/vpn_service.ts";
import { formatRows, printResult } from "./output.ts";
import { CLIENT_PERMISSIONS, type CommandSpec, JSON_OPTION } from "./spec.ts";

function renderStatus(s: VpnStatus): string {
  const lines: string[] = [];
  if (s.reason) lines.push(`VPN ${s.enabled ? "partly off" : "off"}: ${s.reason}`);
  if (s.networks.length === 0) {
    if (!s.reason) lines.push("no networks: add a [networks.NAME] section to config.toml");
    return lines.join("\n") + "\n";
  }
  const rows = s.networks.map((n) => [
    n.name,
    n.interface,
    n.address,
    String(n.peers),
    String(n.routes),
    `${n.packets_in} / ${n.packets_out}`,
    Object.entries(n.drops).map(([k, v]) => `${k} ${v}`).join(", ") || "-",
  ]);
  let out = lines.join("\n") + (lines.length ? "\n" : "") +
    formatRows(
      ["NETWORK", "INTERFACE", "ADDRESS", "PEERS", "ROUTES", "PKTS IN / OUT", "DROPS"],
      rows,
    );
  for (const n of s.networks) {
    if (n.collision) out += `\n${n.name}: address collision: ${n.collision}\n`;
    for (const r of n.rejected.slice(-5)) {
      out += `\n${n.name}: refused ${r.prefix} from ${r.peer}: ${r.reason}`;
    }
    for (const r of n.refused_by_peers.slice(-5)) {
      out += `\n${n.name}: ${r.peer} refused our ${r.prefix}: ${r.reason}`;
    }
  }
  out = out.endsWith("\n") ? out : out + "\n";
  const dp = s.dataplane;
  if (dp) {
    out += `\ndirect UDP: ${dp.udp ?? `off (${dp.error})`}\n`;
    if (dp.udp && dp.nat) out += `NAT: ${natLine(dp.nat)}\n`;
    if (dp.peers.length > 0) {
      out += formatRows(
        ["PEER", "PATH", "ENDPOINT", "RTT", "BATCHED"],
        dp.peers.map((p) => [
          p.peer,
          p.path ?? "-",
          p.endpoint ?? "-",
          p.rtt_ms === null ? "-" : `${p.rtt_ms.toFixed(2)} ms`,
          p.batched ? "yes" : "no",
        ]),
      );
    }
    const drops = Object.entries(dp.drops).map(([k, v]) => `${k} ${v}`).join(", ");
    if (drops) out += `datagrams dropped: ${drops}\n`;
  }
  return out;
}

/** This node's NAT in words (docs/NAT.md). */
function natLine(n: NonNullable<VpnStatus["dataplane"]>["nat"]): string {
  switch (n.type) {
    case "open":
      return `open (no NAT): ${n.public}`;
    case "cone":
      return `cone, public endpoint ${n.public}: direct paths to most peers`;
    case "symmetric":
      return `symmetric (mappings ${n.mapped.join(", ")}): direct paths only to peers ` +
        `without NAT`;
    case "blocked":
      return "UDP blocked: the relay's reflector did not answer; VPN traffic uses sessions";
    default:
      return n.public
        ? `unknown (one reflector answered: ${n.public})`
        : "unknown (no relay with a reflector ready yet)";
  }
}

export const vpnStatusCommand: CommandSpec = {
  name: "vpn status",
  summary: "VPN networks: interfaces, addresses, peers, routes, traffic, drops; why it is off",
  options: { ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const s = await callDaemon(ctx.paths.socket, "vpn.status") as VpnStatus;
    return printResult(ctx.bool("json"), s, renderStatus);
  },
};

export const routesCommand: CommandSpec = {
  name: "routes",
  summary: "routes learned from peers: network, prefix, peer, metric, expiry",
  options: { ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const routes = await callDaemon(ctx.paths.socket, "routes") as RouteView[];
    return printResult(
      ctx.bool("json"),
      routes,
      (rs) =>
        rs.length === 0 ? "no routes from peers yet\n" : formatRows(
          ["NETWORK", "PREFIX", "PEER", "METRIC", "EXPIRES"],
          rs.map((r) => [r.network, r.prefix, r.peer, String(r.metric), r.expires]),
        ),
    );
  },
};

export const VPN_COMMANDS = [vpnStatusCommand, routesCommand];
