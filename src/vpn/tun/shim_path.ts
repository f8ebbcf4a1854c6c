/**
 * Finds and loads the den_tun shim (scripts/build-shim builds it into dist/shim/).
 *
 * The library is read through a literal `new URL("../../../dist/shim/<file>", import.meta.url)`
 * so that `deno compile --include dist/shim` embeds it. dlopen cannot open a file inside a
 * compiled binary's virtual file system, so the bytes are always copied to a real file named by
 * their hash, `<cacheDir>/libden_tun-<16 hex of sha256>.<ext>` (directory 0700, file 0600,
 * written atomically, rewritten when missing or when its contents differ), and that is dlopened.
 */
import { join } from "node:path";
import { toHex } from "../../crypto/encoding.ts";
import { DenError, isNotFound } from "../../errors.ts";
import { writeFileAtomic } from "../../util/fsio.ts";
import { TUN_SYMBOLS, type TunSymbols } from "./tun_device.ts";

export const TUN_SHIM_ABI = 2;

/** A loaded shim. */
export interface TunShim {
  readonly symbols: TunSymbols;
  /** The file that was dlopened (the hash-named cached copy). */
  readonly path: string;
  /** sha256 of the library, hex. */
  readonly sha256: string;
  /** Unloads the library; no TunDevice opened through it may be used afterwards. */
  close(): void;
}

/** `libden_tun-<os>-<arch>.<so|dylib>`: the name scripts/build-shim gives its output. */
export function shimFileName(os: string, arch: string): string {
  if (os !== "linux" && os !== "darwin") {
    throw new DenError("no_tun_shim", `the VPN needs Linux or macOS (this is ${os})`);
  }
  if (arch !== "x86_64" && arch !== "aarch64") {
    throw new DenError("no_tun_shim", `no TUN shim for the ${arch} architecture`);
  }
  return `libden_tun-${os}-${arch}.${os === "darwin" ? "dylib" : "so"}`;
}

/** Where the shim lives next to the sources / inside a compiled binary: one literal URL each. */
function shimUrl(file: string): URL {
  switch (file) {
    case "libden_tun-linux-x86_64.so":
      return new URL("../../../dist/shim/libden_tun-linux-x86_64.so", import.meta.url);
    case "libden_tun-linux-aarch64.so":
      return new URL("../../../dist/shim/libden_tun-linux-aarch64.so", import.meta.url);
    case "libden_tun-darwin-x86_64.dylib":
      return new URL("../../../dist/shim/libden_tun-darwin-x86_64.dylib", import.meta.url);
    case "libden_tun-darwin-aarch64.dylib":
      return new URL("../../../dist/shim/libden_tun-darwin-aarch64.dylib", import.meta.url);
    default:
      throw new DenError("no_tun_shim", `no TUN shim named ${file}`);
  }
}

/** $XDG_CACHE_HOME/den, else $HOME/.cache/den. */
export function defaultShimCacheDir(): string {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  if (xdg && xdg.startsWith("/")) return join(xdg, "den");
  const home = Deno.env.get("HOME");
  if (!home) {
    throw new DenError("no_tun_shim", "cannot place the TUN shim cache: HOME is not set", {
      hint: "set HOME or XDG_CACHE_HOME",
    });
  }
  return join(home, ".cache", "den");
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource)));
}

async function readShim(file: string): Promise<Uint8Array> {
  const url = shimUrl(file);
  try {
    return await Deno.readFile(url);
  } catch (err) {
    if (isNotFound(err)) {
      throw new DenError(
        "no_tun_shim",
        `the TUN shim ${file} is missing (looked for ${url.href})`,
        {
          hint: "build it with scripts/build-shim (needs a C compiler)",
        },
      );
    }
    throw err;
  }
}

/** The cache directory, created 0700; refuses one that others can write to. */
async function prepareCacheDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await Deno.stat(dir);
  const uid = Deno.uid();
  if (
    !info.isDirectory || (info.mode !== null && (info.mode & 0o022) !== 0) ||
    (uid !== null && info.uid !== null && info.uid !== uid)
  ) {
    throw new DenError(
      "insecure_shim_cache",
      `the TUN shim cache ${dir} is not a private directory (it must be ours and not writable by others)`,
      { hint: `chmod 700 ${dir}, or set XDG_CACHE_HOME to a private directory` },
    );
  }
}

/** Is `path` already our private copy of exactly `bytes`? */
async function cachedCopyMatches(path: string, hash: string): Promise<boolean> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
  if (!info.isFile) {
    await Deno.remove(path, { recursive: true });
    return false;
  }
  const uid = Deno.uid();
  if (info.mode !== null && (info.mode & 0o777) !== 0o600) return false;
  if (uid !== null && info.uid !== null && info.uid !== uid) return false;
  return await sha256Hex(await Deno.readFile(path)) === hash;
}

/**
 * Loads the shim for this OS and architecture: copies it to the hash-named cache file (see the
 * module comment), dlopens that and checks den_tun_abi_version() === TUN_SHIM_ABI.
 */
export async function loadTunShim(opts: { cacheDir?: string } = {}): Promise<TunShim> {
  const file = shimFileName(Deno.build.os, Deno.build.arch);
  const bytes = await readShim(file);
  const sha256 = await sha256Hex(bytes);
  const dir = opts.cacheDir ?? defaultShimCacheDir();
  await prepareCacheDir(dir);
  const ext = file.endsWith(".dylib") ? "dylib" : "so";
  const path = join(dir, `libden_tun-${sha256.slice(0, 16)}.${ext}`);
  if (!await cachedCopyMatches(path, sha256)) await writeFileAtomic(path, bytes, 0o600);

  let lib: Deno.DynamicLibrary<typeof TUN_SYMBOLS>;
  try {
    lib = Deno.dlopen(path, TUN_SYMBOLS);
  } catch (err) {
    throw new DenError(
      "no_tun_shim",
      `cannot load the TUN shim ${path}: ${(err as Error).message}`,
      {
        hint: "rebuild it with scripts/build-shim",
      },
    );
  }
  const abi = lib.symbols.den_tun_abi_version();
  if (abi !== TUN_SHIM_ABI) {
    lib.close();
    throw new DenError(
      "no_tun_shim",
      `the TUN shim ${file} has ABI version ${abi}, this den needs ${TUN_SHIM_ABI}`,
      { hint: "rebuild it with scripts/build-shim" },
    );
  }
  let closed = false;
  return {
    symbols: lib.symbols,
    path,
    sha256,
    close() {
      if (closed) return;
      closed = true;
      lib.close();
    },
  };
}
