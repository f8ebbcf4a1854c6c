/**
 * Network namespaces for end-to-end tests: made by the test, named uniquely, removed afterwards
 * (also when the test fails). Needs root and iproute2; `netnsUnavailable()` says why not.
 */

/** Runs a command without throwing: whether it succeeded, and what it printed (stdout, stderr). */
export async function runOutput(
  argv: string[],
): Promise<{ ok: boolean; code: number; stdout: string; stderr: string; out: string }> {
  const o = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  const stdout = dec.decode(o.stdout), stderr = dec.decode(o.stderr);
  return { ok: o.success, code: o.code, stdout, stderr, out: stdout + stderr };
}

/** Runs a command; unless `check: false`, a failure throws with the command and its stderr. */
export async function run(argv: string[], opts: { check?: boolean } = {}): Promise<string> {
  const r = await runOutput(argv);
  if (opts.check !== false && !r.ok) {
    throw new Error(`${argv.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Whether `cmd` is an executable file in one of PATH's directories. */
export function onPath(cmd: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((d) => {
    try {
      return Deno.statSync(`${d}/${cmd}`).isFile;
    } catch {
      return false;
    }
  });
}

/** Why namespace tests cannot run here (null when they can). */
export function netnsUnavailable(tools: string[] = []): string | null {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "network namespaces need root";
  for (const t of ["ip", ...tools]) if (!onPath(t)) return `${t} is not installed`;
  return null;
}

/** A set of namespaces with a common random prefix; `destroy()` removes them all. */
export class NetnsLab {
  readonly prefix: string;
  readonly #made: string[] = [];

  constructor() {
    this.prefix = `den${crypto.randomUUID().slice(0, 6)}`;
  }

  /** Creates namespace `<prefix><suffix>` with loopback up; returns its name. */
  async ns(suffix: string): Promise<string> {
    const name = this.prefix + suffix;
    await run(["ip", "netns", "add", name]);
    this.#made.push(name);
    await this.exec(name, ["ip", "link", "set", "lo", "up"]);
    return name;
  }

  exec(ns: string, argv: string[], opts?: { check?: boolean }): Promise<string> {
    return run(["ip", "netns", "exec", ns, ...argv], opts);
  }

  /** A veth pair between two namespaces, each end with an address (CIDR) and up. */
  async link(a: string, aAddr: string, b: string, bAddr: string): Promise<void> {
    const id = crypto.randomUUID().slice(0, 6);
    const ia = `va${id}`, ib = `vb${id}`;
    await run([
      "ip",
      "link",
      "add",
      ia,
      "netns",
      a,
      "type",
      "veth",
      "peer",
      "name",
      ib,
      "netns",
      b,
    ]);
    for (const [ns, ifc, addr] of [[a, ia, aAddr], [b, ib, bAddr]]) {
      await this.exec(ns, ["ip", "addr", "add", addr, "dev", ifc]);
      await this.exec(ns, ["ip", "link", "set", ifc, "up"]);
    }
  }

  async destroy(): Promise<void> {
    for (const ns of this.#made.splice(0)) {
      await run(["ip", "netns", "del", ns], { check: false });
    }
  }
}
