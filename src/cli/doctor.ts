/** `den doctor`: checks this node's setup and says what to fix. */
// The implementation is loaded only when the command runs, so other commands start fast.
import { CLIENT_PERMISSIONS, type CommandSpec, JSON_OPTION } from "./spec.ts";

export const doctorCommand: CommandSpec = {
  name: "doctor",
  summary: "check config, identity, permissions, ports, clock, VPN and relays; say what to fix",
  options: { ...JSON_OPTION },
  // ffi and sys: the VPN check loads the TUN shim and starts the data plane as the daemon would.
  permissions: [...CLIENT_PERMISSIONS, "ffi", "sys"],
  async run(ctx) {
    return (await import("./doctor_action.ts")).runDoctor(ctx);
  },
};
