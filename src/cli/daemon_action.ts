/** `den daemon`: loads config and identity, runs the daemon in the foreground until stopped. */
import { loadConfig } from "../config/load.ts";
import { Daemon } from "../daemon/daemon.ts";
import { DenError, Exit } from "../errors.ts";
import { fingerprint } from "../identity/fingerprint.ts";
import { readKeystore } from "../identity/keystore.ts";
import { obtainPassphrase } from "../identity/passphrase.ts";
import { checkPrivateDir } from "../identity/permissions.ts";
import { readPublicFile } from "../identity/pubfile.ts";
import { type LogFormat, Logger, type LogLevel } from "../log/logger.ts";

const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];
import type { CommandContext } from "./context.ts";

export async function runDaemon(ctx: CommandContext): Promise<number> {
  const paths = ctx.paths;
  const { config } = await loadConfig(paths.config);
  const format = (ctx.string("log-format") ?? config.node.log_format) as LogFormat;
  const level = (ctx.string("log-level") ?? config.node.log_level) as LogLevel;
  if (!["text", "json"].includes(format)) {
    throw new DenError("usage", `--log-format: found "${format}", allowed: text or json`, {
      exit: Exit.usage,
    });
  }
  if (!["debug", "info", "warn", "error"].includes(level)) {
    throw new DenError("usage", `--log-level: found "${level}", allowed: debug|info|warn|error`, {
      exit: Exit.usage,
    });
  }
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
