/** Peer commands: peers, peers verify, ping, add-peer, rm-peer, trust reset. */
import { parseHostPort } from "../config/validators.ts";
import { DenError, Exit } from "../errors.ts";
import { normalizeFingerprint, shortFingerprint } from "../identity/fingerprint.ts";
import type { PingResult, VerifyResult } from "../ipc/results.ts";
import { MAX_ECHO_DATA } from "../wire/peer_control.ts";
import { callDaemon } from "../ipc/client.ts";
import type { PeerView } from "../peer/view.ts";
import { formatDuration, formatRows, printJson, writeOut } from "./output.ts";
import { positiveIntFlag } from "./flag_values.ts";
import { CLIENT_PERMISSIONS, type CommandSpec, JSON_OPTION } from "./spec.ts";

function ago(iso: string | null): string {
  if (!iso) return "never";
  return `${formatDuration(Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000)))} ago`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** The VPN PATH column: the path, and why it is not direct when NAT traversal cannot work. */
export function vpnPath(p: PeerView): string {
  if (!p.data_path) return "-";
  const nat = p.nat;
  if (!nat || p.data_path === "udp" || nat.direct === "udp") return p.data_path;
  if (nat.direct === "trying") return `${p.data_path} (trying udp)`;
  if (nat.local === "symmetric" || nat.peer === "symmetric") {
    return `${p.data_path} (symmetric NAT)`;
  }
  if (nat.local === "blocked" || nat.peer === "blocked") return `${p.data_path} (UDP blocked)`;
  return `${p.data_path} (no direct path)`;
}

export const peersCommand: CommandSpec = {
  name: "peers",
  summary: "list peers: state, transport, rtt, last seen, traffic; why a peer is refused",
  options: { ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const peers = await callDaemon(ctx.paths.socket, "peers") as PeerView[];
    if (ctx.bool("json")) {
      printJson(peers);
      return 0;
    }
    if (peers.length === 0) {
      writeOut(`no peers yet: den add-peer NAME HOST:PORT [--fingerprint FP]${ctx.homeHint}\n`);
      return 0;
    }
    const rows = peers.map((p) => [
      p.name,
      p.state,
      p.transport ?? "-",
      vpnPath(p),
      (p.transport === "relay" ? p.path : p.address) ?? "-",
      p.rtt_ms === null ? "-" : `${p.rtt_ms.toFixed(1)} ms`,
      ago(p.last_seen),
      `${bytes(p.bytes_in)} / ${bytes(p.bytes_out)}`,
      p.fingerprint ? shortFingerprint(p.fingerprint) : "-",
    ]);
    const head = [
      "NAME",
      "STATE",
      "VIA",
      "VPN PATH",
      "ADDRESS",
      "RTT",
      "LAST SEEN",
      "IN / OUT",
      "FINGERPRINT",
    ];
    writeOut(formatRows(head, rows));
    for (const p of peers.filter((p) => p.nat?.direct === "impossible")) {
      writeOut(`\n${p.name}: ${p.nat!.why}\n`);
    }
    for (const p of peers.filter((p) => p.reason && p.state !== "connected")) {
      writeOut(`\n${p.name}: ${p.reason}\n`);
      if (p.presented_fingerprint) {
        writeOut(
          `  trusted:   ${p.fingerprint}\n  presented: ${p.presented_fingerprint}\n` +
            `  if the change is expected: den trust reset ${p.name}${ctx.homeHint}\n`,
        );
      }
    }
    return 0;
  },
};

export const peersVerifyCommand: CommandSpec = {
  name: "peers verify",
  summary: "short authentication string: compare these words with the peer's owner by voice",
  args: "NAME",
  minArgs: 1,
  maxArgs: 1,
  options: { ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const r = await callDaemon(ctx.paths.socket, "peers.verify", {
      name: ctx.args[0],
    }) as VerifyResult;
    if (ctx.bool("json")) {
      printJson(r);
      return 0;
    }
    writeOut(
      `${r.words.join(" ")}\n\nThe owner of ${r.name} runs \`den peers verify\` with your node's ` +
        `name and must read the same words.\nIf they differ, someone is in the middle: ` +
        `den rm-peer ${r.name}, and check the fingerprint\n${r.fingerprint} with them.\n`,
    );
    return 0;
  },
};

export const pingCommand: CommandSpec = {
  name: "ping",
  summary: "round trip through the session with a peer, and which path it takes (direct or relay)",
  args: "NAME",
  minArgs: 1,
  maxArgs: 1,
  options: {
    count: { type: "string", short: "c", value: "N", help: "pings to send (default 3)" },
    size: { type: "string", short: "s", value: "BYTES", help: "data bytes per ping (default 56)" },
    pattern: {
      type: "string",
      short: "p",
      value: "TEXT",
      help: "fill the data with TEXT (to find data-dependent problems)",
    },
    ...JSON_OPTION,
  },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const count = positiveIntFlag(ctx, "count", 1000) ?? 3;
    const size = positiveIntFlag(ctx, "size", MAX_ECHO_DATA) ?? 56;
    const pattern = ctx.string("pattern") || "den ping ";
    const data = pattern.repeat(Math.ceil(size / pattern.length)).slice(0, size);
    const results: PingResult[] = [];
    let failed = 0;
    for (let i = 0; i < count; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 1000));
      try {
        const r = await callDaemon(ctx.paths.socket, "peers.ping", {
          name: ctx.args[0],
          data,
        }) as PingResult;
        results.push(r);
        if (!ctx.bool("json")) {
          writeOut(
            `pong from ${r.name} via ${r.transport} ${r.path}: ${r.bytes} bytes, ` +
              `time=${r.rtt_ms.toFixed(2)} ms\n`,
          );
        }
      } catch (err) {
        if (!(err instanceof DenError) || err.code !== "ping_timeout") throw err;
        failed++;
        if (!ctx.bool("json")) writeOut(`${err.message}\n`);
      }
    }
    if (ctx.bool("json")) printJson({ sent: count, received: results.length, results });
    return failed === count ? 1 : 0;
  },
};

export const addPeerCommand: CommandSpec = {
  name: "add-peer",
  summary: "add or update a peer (applied to the running daemon at once and saved to config)",
  args: "NAME [HOST:PORT]",
  minArgs: 1,
  maxArgs: 2,
  description: "Without an address the peer is reached through the relays in [relay] urls " +
    "(once its fingerprint is known), or waits for it to connect to this node.",
  options: {
    fingerprint: { type: "string", value: "FP", help: "pin the peer's identity (beats TOFU)" },
    ...JSON_OPTION,
  },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const address = ctx.args[1];
    if (address !== undefined) {
      try {
        parseHostPort(address);
      } catch (err) {
        throw new DenError("usage", `address "${address}": ${(err as Error).message}`, {
          exit: Exit.usage,
          hint: "give HOST:PORT, e.g. 192.0.2.10:7834 or [2001:db8::1]:7834",
        });
      }
    }
    const fp = ctx.string("fingerprint");
    const peer = {
      name: ctx.args[0],
      address,
      fingerprint: fp === undefined ? undefined : normalizeFingerprint(fp),
    };
    try {
      await callDaemon(ctx.paths.socket, "peers.add", peer);
      writeOut(`added ${peer.name}${peer.address ? ` at ${peer.address}` : ""}; dialling now\n`);
    } catch (err) {
      if (!(err instanceof DenError && err.exit === Exit.noDaemon)) throw err;
      const { savePeer } = await import("../config/peers_file.ts");
      await savePeer(ctx.paths.config, peer);
      writeOut(`added ${peer.name} to ${ctx.paths.config}; the daemon is not running\n`);
    }
    return 0;
  },
};

export const rmPeerCommand: CommandSpec = {
  name: "rm-peer",
  summary: "remove a peer from config and close its session",
  args: "NAME",
  minArgs: 1,
  maxArgs: 1,
  options: {},
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const name = ctx.args[0];
    try {
      await callDaemon(ctx.paths.socket, "peers.remove", { name });
    } catch (err) {
      if (!(err instanceof DenError && err.exit === Exit.noDaemon)) throw err;
      const { deletePeer } = await import("../config/peers_file.ts");
      if (!await deletePeer(ctx.paths.config, name)) {
        throw new DenError("no_such_peer", `${name} is not in ${ctx.paths.config}`, {
          hint: "den peers lists the peers",
        });
      }
    }
    writeOut(`removed ${name}\n`);
    return 0;
  },
};

export const trustResetCommand: CommandSpec = {
  name: "trust reset",
  summary: "forget a peer's pinned-on-first-use identity and accept its new one",
  args: "NAME",
  minArgs: 1,
  maxArgs: 1,
  description: "Verify the new identity first: ask its owner for the fingerprint, or use " +
    "`den peers verify NAME` once connected.",
  options: { ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const name = ctx.args[0];
    const r = await callDaemon(ctx.paths.socket, "trust.reset", { name }) as {
      forgotten: string | null;
    };
    if (ctx.bool("json")) {
      printJson({ name, ...r });
      return 0;
    }
    writeOut(
      r.forgotten
        ? `forgot ${name}'s fingerprint ${r.forgotten}; its next identity is pinned on connect\n` +
          `check it with: den peers verify ${name}${ctx.homeHint}\n`
        : `${name} had no remembered fingerprint; reconnecting\n`,
    );
    return 0;
  },
};

export const PEER_COMMANDS = [
  peersCommand,
  peersVerifyCommand,
  pingCommand,
  addPeerCommand,
  rmPeerCommand,
  trustResetCommand,
];
