/**
 * What `deno task compile` runs for each target (pure: scripts/build.ts does the I/O).
 * The same entry point and permission flags as `deno task den`, plus the files a compiled
 * binary must carry because they are loaded at run time: the TUN shim for the target (dlopened
 * from a copy, see src/vpn/tun/shim_path.ts) and the data-plane worker module.
 */

/** Rust target triple → release asset name (DESIGN.md §2, "Release assets"). */
export const TARGETS = {
  "x86_64-unknown-linux-gnu": { os: "linux", arch: "x86_64" },
  "aarch64-unknown-linux-gnu": { os: "linux", arch: "aarch64" },
  "x86_64-apple-darwin": { os: "darwin", arch: "x86_64" },
  "aarch64-apple-darwin": { os: "darwin", arch: "aarch64" },
} as const;

export type Target = keyof typeof TARGETS;

/** Loaded with `new Worker(new URL(...))`, which deno compile does not follow on its own. */
export const WORKER_MODULES = ["src/vpn/dataplane/worker.ts"];

export interface CompileStep {
  target: Target;
  /** `den-<os>-<arch>`. */
  asset: string;
  /** The shim this target embeds, relative to the project root. */
  shim: string;
  /** Arguments after `deno`. */
  args: string[];
}

export function isTarget(t: string): t is Target {
  return Object.hasOwn(TARGETS, t);
}

export function assetName(t: Target): string {
  return `den-${TARGETS[t].os}-${TARGETS[t].arch}`;
}

export function shimFor(t: Target): string {
  const { os, arch } = TARGETS[t];
  return `dist/shim/libden_tun-${os}-${arch}.${os === "darwin" ? "dylib" : "so"}`;
}

export function compileSteps(targets: Target[], flags: string[], out: string): CompileStep[] {
  return targets.map((target) => {
    const asset = assetName(target);
    const shim = shimFor(target);
    const includes = [shim, ...WORKER_MODULES].flatMap((f) => ["--include", f]);
    return {
      target,
      asset,
      shim,
      args: [
        "compile",
        // deno.lock must already match: a release never resolves new dependency versions.
        "--frozen",
        ...flags,
        ...includes,
        "--target",
        target,
        "--output",
        `${out}/${asset}`,
        "main.ts",
      ],
    };
  });
}

/** src/build_info.ts as a release build stamps it. */
export function buildInfoSource(commit: string): string {
  if (!/^[0-9a-f]{7,40}$|^unknown$/.test(commit)) throw new Error(`not a commit id: ${commit}`);
  return `// Stamped by scripts/build.ts for this build; "dev" in the repository.\n` +
    `export const BUILD_COMMIT = "${commit}";\n`;
}

/** `sha256sum` format, sorted by name, so `sha256sum -c SHA256SUMS` checks the assets. */
export function sha256sums(entries: { name: string; sha256: string }[]): string {
  return [...entries].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    .map((e) => `${e.sha256}  ${e.name}\n`).join("");
}

/** Release asset file names (`den-<os>-<arch>`) among `names`. */
export function releaseAssets(names: string[]): string[] {
  const known = new Set(Object.keys(TARGETS).map((t) => assetName(t as Target)));
  return names.filter((n) => known.has(n)).sort();
}
