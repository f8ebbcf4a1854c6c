/** `den daemon`: loads config and identity, runs the daemon in the foreground until stopped. */
// The implementation is loaded only when the command runs, so other commands start fast.
import type { CommandSpec } from "./spec.ts";

export const daemonCommand: CommandSpec = {
  name: "daemon",
  summary: "run the daemon in the foreground (SIGINT, SIGTERM or den goodbye stop it)",
  options: {
    "passphrase-file": { type: "string", value: "FILE", help: "read the key passphrase from FILE" },
    "log-format": {
      type: "string",
      value: "text|json",
      help: "log format (config: node.log_format)",
    },
    "log-level": {
      type: "string",
      value: "debug|info|warn|error",
      help: "log level (config: node.log_level)",
    },
  },
  // FFI and subprocesses come with the VPN; until then the daemon gives them up.
  permissions: ["read", "write", "net", "env", "sys", "run", "ffi"],
  async run(ctx) {
    return (await import("./daemon_action.ts")).runDaemon(ctx);
  },
};
