/**
 * One daemon per home: an exclusive advisory lock on `daemon.lock`, which the kernel releases
 * when the process dies, so a crash never leaves a lock behind. The file holds the owner's pid.
 */
import { DenError } from "../errors.ts";

export class InstanceLock {
  readonly #file: Deno.FsFile;

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  static async acquire(path: string): Promise<InstanceLock> {
    const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    if (!await file.tryLock(true)) {
      const holder = await readPid(file);
      file.close();
      throw new DenError(
        "already_running",
        `another den daemon${holder ? ` (pid ${holder})` : ""} is already running with ${path}`,
        { hint: "stop it first with `den goodbye`, or use another --home for a second node" },
      );
    }
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
    return new InstanceLock(file);
  }

  release(): void {
    try {
      this.#file.truncateSync(0);
      this.#file.unlockSync();
    } catch { /* closing releases it anyway */ }
    this.#file.close();
  }
}

async function readPid(file: Deno.FsFile): Promise<number | null> {
  const buf = new Uint8Array(32);
  await file.seek(0, Deno.SeekMode.Start);
  const n = await file.read(buf);
  const pid = Number.parseInt(new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim(), 10);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}
