/** `den init`: creates this node's identity and config. */
// The implementation is loaded only when the command runs, so other commands start fast.
import { type CommandSpec, JSON_OPTION } from "./spec.ts";

export const initCommand: CommandSpec = {
  name: "init",
  summary: "create this node's identity (keys) and config; prints the fingerprint",
  options: {
    name: {
      type: "string",
      value: "NAME",
      required: true,
      help: "this node's name as peers will see it",
    },
    "no-passphrase": {
      type: "boolean",
      help: "store the private keys unencrypted (0600) for servers and CI",
    },
    "passphrase-file": { type: "string", value: "FILE", help: "read the new passphrase from FILE" },
    listen: { type: "string", value: "HOST:PORT", help: "peer listen address (0.0.0.0:7834)" },
    metrics: {
      type: "string",
      value: "HOST:PORT|off",
      help: "Prometheus metrics address (127.0.0.1:9000)",
    },
    relay: { type: "string", value: "URL", multiple: true, help: "relay URL (ws:// or wss://)" },
    force: { type: "boolean", help: "replace an existing identity and config (new fingerprint)" },
    ...JSON_OPTION,
  },
  description: "The passphrase comes from --passphrase-file, else DEN_PASSPHRASE, else a prompt.",
  permissions: ["read", "write", "env"],
  async run(ctx) {
    return (await import("./init_action.ts")).runInit(ctx);
  },
};
