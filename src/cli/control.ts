/** Commands that ask the running daemon: status, reload, goodbye. */
import { DenError } from "../errors.ts";
import { callDaemon } from "../ipc/client.ts";
import { formatDuration, formatTable, printJson, writeOut } from "./output.ts";
import type { ReloadResult, StatusResult } from "../ipc/results.ts";
import { CLIENT_PERMISSIONS, type CommandSpec, JSON_OPTION } from "./spec.ts";

export const statusCommand: CommandSpec = {
  name: "status",
  summary: "show the daemon's identity, uptime, addresses and counts",
  options: { ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const s = await callDaemon(ctx.paths.socket, "status") as StatusResult;
    if (ctx.bool("json")) {
      printJson(s);
      return 0;
    }
    writeOut(formatTable([
      ["name", s.name],
      ["fingerprint", s.fingerprint],
      ["version", s.version],
      ["uptime", formatDuration(s.uptime_s)],
      ["listen", s.listen],
      ["metrics", s.metrics],
      ["pid", String(s.pid)],
      ["config", s.config],
      ["peers", `${s.counts.peers_connected} connected of ${s.counts.peers}`],
      ...(s.relays.length
        ? s.relays.map((r): [string, string] => ["relay", relayLine(r)])
        : [["relays", "none"] as [string, string]]),
      ["teams", `${s.counts.teams} (${s.counts.ops} secret ops stored)`],
      ["networks", String(s.counts.networks)],
    ]));
    return 0;
  },
};

function relayLine(r: StatusResult["relays"][number]): string {
  return r.state === "ready" ? `${r.url} (ready)` : `${r.url} (${r.state}: ${r.reason ?? "-"})`;
}

export const reloadCommand: CommandSpec = {
  name: "reload",
  summary: "re-read config.toml; an invalid file is refused and the running config kept",
  options: { ...JSON_OPTION },
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const r = await callDaemon(ctx.paths.socket, "reload") as ReloadResult;
    if (ctx.bool("json")) {
      printJson(r);
      return 0;
    }
    writeOut(`config reloaded: ${r.applied.length ? r.applied.join(", ") : "nothing changed"}\n`);
    if (r.restart_required.length) {
      writeOut(
        `needs a restart to take effect: ${r.restart_required.join(", ")} ` +
          `(den goodbye${ctx.homeHint}, then start the daemon again)\n`,
      );
    }
    return 0;
  },
};

/** How long `den goodbye` waits for the daemon to be gone. */
const GOODBYE_WAIT_MS = 5000;

export const goodbyeCommand: CommandSpec = {
  name: "goodbye",
  summary: "stop the daemon gracefully (peers are told, routes withdrawn)",
  options: {},
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    const socket = ctx.paths.socket;
    const r = await callDaemon(socket, "goodbye") as { pid: number };
    const deadline = Date.now() + GOODBYE_WAIT_MS;
    while (Date.now() < deadline) {
      try {
        await Deno.lstat(socket);
      } catch {
        writeOut(`daemon stopped (pid ${r.pid})\n`);
        return 0;
      }
      await new Promise((res) => setTimeout(res, 25));
    }
    throw new DenError("stop_timeout", `the daemon (pid ${r.pid}) did not stop within 5 s`, {
      hint: `check its log; kill ${r.pid} ends it`,
    });
  },
};
