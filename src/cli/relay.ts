/** `den relay`: runs the relay server (chat rooms and mailboxes) in the foreground. */
// The implementation is loaded only when the command runs, so other commands start fast.
import type { CommandSpec } from "./spec.ts";

export const relayCommand: CommandSpec = {
  name: "relay",
  summary: "run a relay: chat rooms and mailboxes for daemons that cannot reach each other",
  options: {
    listen: { type: "string", value: "HOST:PORT", help: "listen address (0.0.0.0:8765)" },
    "tls-cert": { type: "string", value: "FILE", help: "PEM certificate chain: serve wss://" },
    "tls-key": { type: "string", value: "FILE", help: "PEM private key for --tls-cert" },
    metrics: {
      type: "string",
      value: "HOST:PORT|off",
      help: "Prometheus metrics address (127.0.0.1:9001)",
    },
    reflector: {
      type: "string",
      value: "HOST:PORT|off",
      help: "UDP address reflector for NAT traversal on PORT and PORT+1 (the listen address)",
    },
    "max-conns": { type: "string", value: "N", help: "connections in total (10000)" },
    "max-conns-per-ip": {
      type: "string",
      value: "N",
      help: "connections per source address (32)",
    },
    "room-rate": {
      type: "string",
      value: "N",
      help: "room messages per second per connection, burst 3×N (20)",
    },
    "mailbox-rate": {
      type: "string",
      value: "N",
      help: "mailbox frames per second per connection, burst 2×N (250000)",
    },
    "ping-interval": {
      type: "string",
      value: "SECONDS",
      help: "ping every SECONDS; silent for two intervals closes (20)",
    },
    "trusted-proxy": {
      type: "string",
      value: "IP",
      multiple: true,
      help: "reverse proxy whose last X-Forwarded-For entry is the client address",
    },
    "log-format": { type: "string", value: "text|json", help: "log format (text)" },
    "log-level": {
      type: "string",
      value: "debug|info|warn|error",
      help: "log level (info)",
    },
  },
  description: "Runs until SIGINT or SIGTERM. It forwards end-to-end encrypted traffic only.",
  // Reading is for the TLS files only, and is given up once they are loaded.
  permissions: ["net", "read"],
  async run(ctx) {
    return (await import("./relay_action.ts")).runRelay(ctx);
  },
};
