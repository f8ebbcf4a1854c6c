/** Bounded reads and atomic writes for the small identity files. */
import { basename, dirname, join } from "node:path";
import { toHex } from "../crypto/encoding.ts";
import { randomBytes } from "../crypto/random.ts";

/** Result of a bounded read: `tooLarge` means the file holds more than the limit. */
export interface BoundedRead {
  bytes: Uint8Array;
  tooLarge: boolean;
  /** Set when the path is not a regular file (a directory, FIFO, device...). */
  notAFile: boolean;
}

/**
 * Reads at most `limit` bytes, without trusting a stat'ed size (the file may grow between stat
 * and read) and without blocking on a FIFO. Errors from Deno (NotFound, PermissionDenied)
 * propagate so callers can map them to a message naming their file.
 */
export async function readBounded(path: string, limit: number): Promise<BoundedRead> {
  const info = await Deno.stat(path);
  if (!info.isFile) return { bytes: new Uint8Array(0), tooLarge: false, notAFile: true };
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(limit + 1);
  let n = 0;
  while (n < buf.length) {
    const got = await file.read(buf.subarray(n));
    if (got === null) break;
    n += got;
  }
  if (n > limit) {
    buf.fill(0);
    return { bytes: new Uint8Array(0), tooLarge: true, notAFile: false };
  }
  return { bytes: buf.subarray(0, n), tooLarge: false, notAFile: false };
}

/**
 * Writes a temp file in the target's directory created with `mode` (no window with looser
 * permissions), fsyncs it and renames it over the target, so readers see the old or the new
 * file, never a torn one.
 */
export async function writeFileAtomic(path: string, data: Uint8Array, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${toHex(randomBytes(6))}.tmp`);
  let renamed = false;
  try {
    {
      using file = await Deno.open(tmp, { write: true, createNew: true, mode });
      let off = 0;
      while (off < data.length) off += await file.write(data.subarray(off));
      await file.sync();
    }
    await Deno.rename(tmp, path);
    renamed = true;
  } finally {
    if (!renamed) await Deno.remove(tmp).catch(() => {});
  }
}
