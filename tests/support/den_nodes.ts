/**
 * Helpers for integration tests with several real den daemons (child processes, each with its own
 * --home on loopback): nodes whose daemon output (stdout and stderr) is kept across restarts,
 * teams made through the real CLI (team create, invite, join), and small waits.
 */
import assert from "node:assert/strict";
import {
  DaemonProcess,
  den,
  type DenResult,
  initNode,
  waitFor,
} from "../../scripts/lib/den_process.ts";
import type { PeerView } from "../../src/peer/view.ts";

export class Node {
  readonly home: string;
  readonly name: string;
  fingerprint = "";
  listen = "";
  /** Every daemon run of this node, oldest first. */
  readonly runs: DaemonProcess[] = [];

  constructor(dir: string, name: string) {
    this.home = `${dir}/${name}`;
    this.name = name;
  }

  async init(extra: string[] = [], ports: { listen?: string; metrics?: string } = {}) {
    const r = await initNode(this.home, this.name, extra, { metrics: "off", ...ports });
    this.fingerprint = r.fingerprint;
    this.listen = r.listen;
    return this;
  }

  get socket(): string {
    return `${this.home}/den.sock`;
  }

  get db(): string {
    return `${this.home}/den.db`;
  }

  get daemon(): DaemonProcess | undefined {
    const last = this.runs.at(-1);
    return last && !last.gone ? last : undefined;
  }

  /** All the daemon has written, every run (stdout and stderr). */
  get output(): string {
    return this.runs.map((r) => r.stdout + r.log).join("\n");
  }

  /** stderr (the log) of every run. */
  get log(): string {
    return this.runs.map((r) => r.log).join("\n");
  }

  /** The log of the latest run. */
  get lastLog(): string {
    return this.runs.at(-1)?.log ?? "";
  }

  async start(): Promise<void> {
    assert.equal(this.daemon, undefined, `${this.name} is already running`);
    this.runs.push(await DaemonProcess.start(this.home));
  }

  /** Graceful stop through `den goodbye`; waits for the process to end. */
  async goodbye(): Promise<void> {
    const run = this.daemon;
    if (!run) return;
    const r = await this.den("goodbye");
    assert.equal(r.code, 0, `den goodbye ${this.name}: ${r.stderr}`);
    const { status, log } = await run.finished();
    assert.equal(status.code, 0, `${this.name} exit after goodbye:\n${log}`);
  }

  /** SIGKILL, no cleanup at all. */
  async kill9(): Promise<void> {
    const run = this.daemon;
    if (!run) return;
    run.kill("SIGKILL");
    await run.finished();
  }

  /** For cleanup: whatever state it is in, the process is gone afterwards. */
  async stopQuietly(): Promise<void> {
    for (const r of this.runs) {
      r.kill("SIGKILL");
      await r.finished();
    }
  }

  den(...args: string[]): Promise<DenResult> {
    return den([...args, "--home", this.home]);
  }

  /** Runs a den command that must succeed; returns stdout. */
  async ok(...args: string[]): Promise<string> {
    const r = await this.den(...args);
    assert.equal(r.code, 0, `den ${args.join(" ")} on ${this.name} (${r.code}):\n${r.stderr}`);
    return r.stdout;
  }

  async json<T>(...args: string[]): Promise<T> {
    return JSON.parse(await this.ok(...args, "--json")) as T;
  }

  async peers(): Promise<PeerView[]> {
    const r = await this.den("peers", "--json");
    return r.code === 0 ? JSON.parse(r.stdout) as PeerView[] : [];
  }

  async connectedTo(other: Node): Promise<PeerView | undefined> {
    return (await this.peers()).find((p) =>
      p.fingerprint === other.fingerprint && p.state === "connected"
    );
  }

  /** Fails, with the daemon's log, unless `den team list` shows this node in `team`. */
  async assertMember(team = "acme"): Promise<void> {
    const teams = await this.json<{ name: string; state: string }[]>("team", "list");
    assert.ok(
      teams.some((t) => t.name === team && t.state === "member"),
      `${this.name} is not in team ${team} after its restart: den team list = ` +
        `${JSON.stringify(teams)}\nits log:\n${this.lastLog}`,
    );
  }

  /** `den env get KEY`: the value, or null when it fails. */
  async get(key: string, team = "acme"): Promise<string | null> {
    const r = await this.den("env", "get", key, "--team", team);
    return r.code === 0 ? r.stdout.replace(/\n$/, "") : null;
  }
}

/** Waits until every pair of the nodes has a session. */
export async function waitConnected(nodes: Node[], timeoutMs = 20_000): Promise<void> {
  for (const a of nodes) {
    for (const b of nodes) {
      if (a === b) continue;
      await waitFor(
        `${a.name} connected to ${b.name}`,
        async () => Boolean(await a.connectedTo(b)),
        timeoutMs,
      );
    }
  }
}

/** Waits until `key` reads `value` on every node. */
export async function waitValue(
  nodes: Node[],
  key: string,
  value: string,
  timeoutMs = 15_000,
): Promise<void> {
  for (const n of nodes) {
    let last: string | null = null;
    try {
      await waitFor(`${key}=${value} on ${n.name}`, async () => {
        last = await n.get(key);
        return last === value;
      }, timeoutMs);
    } catch (err) {
      throw new Error(
        `${(err as Error).message} (last read: ${JSON.stringify(last)})\n` +
          `log of ${n.name}:\n${n.log}`,
      );
    }
  }
}

/**
 * `team create` on the first node (running), then invite and join each other node (running),
 * through the real CLI. Returns the team id.
 */
export async function makeTeam(nodes: Node[], team = "acme"): Promise<string> {
  const [admin, ...rest] = nodes;
  const created = await admin.json<{ id: string }>("team", "create", team);
  for (const n of rest) {
    const inv = await admin.json<{ code: string | null }>("invite", "--team", team);
    assert.ok(inv.code, `invite on ${admin.name} gave no code: ${JSON.stringify(inv)}`);
    const r = await n.den("join", inv.code);
    assert.equal(r.code, 0, `den join on ${n.name} (${r.code}):\n${r.stderr}\n${admin.log}`);
  }
  for (const n of nodes) {
    await waitFor(`${n.name} sees ${nodes.length} members`, async () => {
      const r = await n.den("team", "members", team, "--json");
      return r.code === 0 && (JSON.parse(r.stdout) as unknown[]).length === nodes.length;
    });
  }
  return created.id;
}

/** Every file under `dir`, recursively. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await filesUnder(p));
    else if (e.isFile) out.push(p);
  }
  return out;
}

export function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  if (needle.length === 0) return 0;
  const first = needle[0];
  outer: for (let i = hay.indexOf(first); i !== -1; i = hay.indexOf(first, i + 1)) {
    if (i + needle.length > hay.length) return -1;
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Why a tool-based test cannot run here, or null. */
export function missingTool(tool: string, needRoot = false): string | null {
  if (needRoot && Deno.uid() !== 0) return `needs root (running as uid ${Deno.uid()})`;
  const found = (Deno.env.get("PATH") ?? "").split(":").some((d) => {
    try {
      return Deno.statSync(`${d}/${tool}`).isFile;
    } catch {
      return false;
    }
  });
  return found ? null : `${tool} is not installed`;
}
