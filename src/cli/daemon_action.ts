/** `den daemon`: loads config and identity, runs the daemon in the foreground until stopped. */
import { loadConfig } from "../config/load.ts";
import { Daemon } from "../daemon/daemon.ts";
import { DenError, Exit } from "../errors.ts";
import { fingerprint } from "../identity/fingerprint.ts";
import { readKeystore } from "../identity/keystore.ts";
import { obtainPassphrase } from "../identity/passphrase.ts";
import { checkPrivateDir } from "../identity/permissions.ts";
import { readPublicFile } from "../identity/pubfile.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, Logger, type LogLevel } from "../log/logger.ts";

const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];
import type { CommandContext } from "./context.ts";
import { oneOfFlag } from "./flag_values.ts";

export async function runDaemon(ctx: CommandContext): Promise<number> {
  const paths = ctx.paths;
  const { config } = await loadConfig(paths.config);
  const format = oneOfFlag<LogFormat>(ctx, "log-format", LOG_FORMATS, config.node.log_format);
  const level = oneOfFlag<LogLevel>(ctx, "log-level", LOG_LEVELS, config.node.log_level);
  for (const dir of new Set([paths.configDir, paths.dataDir])) await checkPrivateDir(dir);
  const identity = await readKeystore(paths.identityKey, () =>
    obtainPassphrase({
      file: ctx.string("passphrase-file"),
      env: (k) => Deno.env.get(k),
      purpose: `unlock ${paths.identityKey}`,
    }));
  const fp = fingerprint(identity.publicKeys);
  const pub = await readPublicFile(paths.identityPub);
  if (pub.fingerprint !== fp) {
    throw new DenError(
      "identity_mismatch",
      `${paths.identityPub} (fingerprint ${pub.fingerprint}) does not belong to ` +
        `${paths.identityKey} (fingerprint ${fp})`,
      { exit: Exit.verification, hint: "restore both files from the same backup" },
    );
  }
  const log = new Logger("daemon", { level, format });
  const daemon = await Daemon.start({ paths, config, identity, fingerprint: fp, log });
  const onSignal = (sig: Deno.Signal) => () => daemon.stop(`${sig} received`);
  const listeners = SIGNALS.map((sig) => [sig, onSignal(sig)] as const);
  for (const [sig, fn] of listeners) Deno.addSignalListener(sig, fn);
  try {
    await daemon.stopped;
  } finally {
    for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
  }
  return 0;
}
