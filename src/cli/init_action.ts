/** `den init`: creates this node's identity and config. */
import { ConfigError } from "../config/schema.ts";
import { parseConfig } from "../config/load.ts";
import { renderInitialConfig, writeConfigFile } from "../config/write.ts";
import { DenError, Exit } from "../errors.ts";
import { fingerprint } from "../identity/fingerprint.ts";
import { generateIdentity, wipeIdentity } from "../identity/keys.ts";
import { writeKeystore } from "../identity/keystore.ts";
import { obtainPassphrase } from "../identity/passphrase.ts";
import { ensurePrivateDir } from "../identity/permissions.ts";
import { writePublicFile } from "../identity/pubfile.ts";
import { printJson, printWarning, writeOut } from "./output.ts";

const FLAG_OF: Record<string, string> = {
  "node.name": "--name",
  "node.listen": "--listen",
  "node.metrics": "--metrics",
  "relay.urls": "--relay",
};

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Renders the config and validates it, reporting problems as the flags the user typed. */
function buildConfig(opts: { name: string; listen?: string; metrics?: string; relays: string[] }) {
  const text = renderInitialConfig(opts);
  try {
    parseConfig(text, "config.toml");
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const lines = err.issues.map((i) => {
      const flag = FLAG_OF[i.path] ?? FLAG_OF[i.path.replace(/\.\d+$/, "")] ?? i.path;
      return `${flag}: found ${i.found}, allowed: ${i.allowed}`;
    });
    throw new DenError("usage", lines.join("\n"), {
      exit: Exit.usage,
      hint: "see den init --help",
    });
  }
  return text;
}
import type { CommandContext } from "./context.ts";

export async function runInit(ctx: CommandContext): Promise<number> {
  const name = ctx.string("name")!;
  const paths = ctx.paths;
  const text = buildConfig({
    name,
    listen: ctx.string("listen"),
    metrics: ctx.string("metrics"),
    relays: ctx.list("relay"),
  });
  if (!ctx.bool("force")) {
    for (const f of [paths.identityKey, paths.config]) {
      if (await exists(f)) {
        throw new DenError("already_initialised", `${f} already exists`, {
          hint: `this node is set up already; den init --force${ctx.homeHint} replaces it, ` +
            "and peers will then see a new fingerprint",
        });
      }
    }
  }
  let passphrase: string | null = null;
  if (ctx.bool("no-passphrase")) {
    printWarning(
      "--no-passphrase: the private keys are stored unencrypted, protected only by file " +
        "permissions (0600). Use it for servers and CI, not for laptops.",
    );
  } else {
    passphrase = await obtainPassphrase({
      file: ctx.string("passphrase-file"),
      confirm: true,
      env: (k) => Deno.env.get(k),
      purpose: `encrypt ${name}'s new keys`,
    });
  }
  for (const dir of new Set([paths.configDir, paths.dataDir])) await ensurePrivateDir(dir);
  const identity = await generateIdentity(name);
  const fp = fingerprint(identity.publicKeys);
  try {
    await writeKeystore(paths.identityKey, identity, { passphrase });
    await writePublicFile(paths.identityPub, identity);
  } finally {
    wipeIdentity(identity);
  }
  await writeConfigFile(paths.config, text);
  if (ctx.bool("json")) {
    printJson({ name, fingerprint: fp, config: paths.config, encrypted: passphrase !== null });
    return 0;
  }
  writeOut(
    `created identity for ${name}\n` +
      `fingerprint: ${fp}\n` +
      `config:      ${paths.config}\n` +
      `next: den daemon${ctx.homeHint}   (or den service install)\n`,
  );
  return 0;
}
