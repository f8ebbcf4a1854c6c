/** den: one binary, three modes (daemon, relay, client commands). Dispatch only. */
import { COMMANDS } from "./src/cli/commands.ts";
import { runCli } from "./src/cli/dispatch.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args, COMMANDS));
}
