/**
 * A few real den daemons (child processes, one --home each, loopback ports) driven through the
 * CLI the way a user would: `den team …`, `den invite`, `den join`, `den env …`. Used by
 * tests/integration/team_flow_test.ts. On a failure the daemons' logs are printed.
 */
import assert from "node:assert/strict";
import {
  DaemonProcess,
  den,
  type DenResult,
  initNode,
  waitFor,
} from "../../scripts/lib/den_process.ts";

export interface MemberRow {
  name: string;
  fingerprint: string;
  role: string;
  envs: string[];
  you: boolean;
}

export interface ProposalRow {
  id: string;
  proposal?: string;
  team: string;
  kind: string;
  approvals: number;
  required: number;
  state: string;
  code?: string | null;
}

export interface EnvRow {
  key: string;
  readable: boolean;
  version: number;
  author: string;
  updated: string;
  rotate: boolean;
}

export interface PeerRow {
  name: string;
  fingerprint: string | null;
  address: string | null;
  state: string;
  reason: string | null;
  transport: string | null;
}

export interface NodeInfo {
  home: string;
  listen: string;
  metrics: string;
  fingerprint: string;
}

export class TeamCluster {
  readonly dir: string;
  readonly nodes = new Map<string, NodeInfo>();
  readonly daemons = new Map<string, DaemonProcess>();
  /** Logs of daemons that were stopped (restarts keep their earlier log here). */
  readonly #pastLogs: string[] = [];

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Runs `fn` with a fresh cluster; always stops the daemons and removes the directory. */
  static async with(prefix: string, fn: (c: TeamCluster) => Promise<void>): Promise<void> {
    const c = new TeamCluster(await Deno.makeTempDir({ prefix: `den-${prefix}-` }));
    try {
      await fn(c);
    } catch (err) {
      // The cluster's directory goes away; the logs are kept (outside it) for the report.
      const path = await Deno.makeTempFile({ prefix: `den-${prefix}-`, suffix: ".log" });
      await Deno.writeTextFile(path, `${await c.diagnostics()}\n${c.logs()}`);
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`${message}\n(daemon logs: ${path})`, { cause: err });
    } finally {
      await c.close();
    }
  }

  home(name: string): string {
    return `${this.dir}/${name}`;
  }

  node(name: string): NodeInfo {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name} in this cluster`);
    return n;
  }

  fp(name: string): string {
    return this.node(name).fingerprint;
  }

  /** `den init` (no passphrase, free loopback ports) and, unless told not to, the daemon. */
  async add(name: string, extra: string[] = [], start = true): Promise<NodeInfo> {
    const home = this.home(name);
    const { listen, metrics, fingerprint } = await initNode(home, name, extra);
    const info = { home, listen, metrics, fingerprint };
    this.nodes.set(name, info);
    if (start) await this.start(name);
    return info;
  }

  async start(name: string): Promise<void> {
    this.daemons.set(name, await DaemonProcess.start(this.home(name)));
  }

  /** `den goodbye`, then waits for the process to end. */
  async goodbye(name: string): Promise<void> {
    const d = this.daemons.get(name);
    if (!d) return;
    const r = await this.run(name, "goodbye");
    assert.equal(r.code, 0, `den goodbye on ${name}: ${r.stderr}`);
    const { log } = await d.finished();
    this.#pastLogs.push(`== ${name} (stopped) ==\n${log}`);
    this.daemons.delete(name);
  }

  /** Runs `den ARGS… --home HOME(name)`. */
  run(name: string, ...args: string[]): Promise<DenResult> {
    return den([...args, "--home", this.home(name)]);
  }

  /** Runs a command that must succeed; returns its stdout. */
  async ok(name: string, ...args: string[]): Promise<string> {
    const r = await this.run(name, ...args);
    assert.equal(r.code, 0, `den ${args.join(" ")} on ${name} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  /** Runs a command with --json that must succeed; returns the parsed document. */
  async json<T>(name: string, ...args: string[]): Promise<T> {
    return JSON.parse(await this.ok(name, ...args, "--json")) as T;
  }

  members(name: string, team: string): Promise<MemberRow[]> {
    return this.json<MemberRow[]>(name, "team", "members", team);
  }

  proposals(name: string, team?: string): Promise<ProposalRow[]> {
    return this.json<ProposalRow[]>(name, "proposals", ...(team ? ["--team", team] : []));
  }

  envList(name: string, team: string, env = "default"): Promise<EnvRow[]> {
    return this.json<EnvRow[]>(name, "env", "list", "--team", team, "--env", env);
  }

  peers(name: string): Promise<PeerRow[]> {
    return this.json<PeerRow[]>(name, "peers");
  }

  /** `den invite --team T --json …`. */
  invite(name: string, team: string, ...args: string[]): Promise<ProposalRow> {
    return this.json<ProposalRow>(name, "invite", "--team", team, ...args);
  }

  /** The code of proposal `id` as its author's `den proposals` shows it (null while pending). */
  async codeOf(name: string, id: string): Promise<string | null> {
    const p = (await this.proposals(name)).find((x) => x.id === id);
    assert.ok(p, `${name} does not list proposal ${id}`);
    return p.code ?? null;
  }

  /** `den join CODE` that must succeed. */
  async join(name: string, code: string): Promise<void> {
    await this.ok(name, "join", code);
  }

  /** Waits until every node in `on` lists exactly `expected` (name → role) as members of team. */
  async waitMembers(on: string[], team: string, expected: Record<string, string>, ms = 10_000) {
    const want = JSON.stringify(Object.entries(expected).sort());
    let last = "";
    try {
      await waitFor(`members of ${team} on ${on.join(",")}`, async () => {
        for (const n of on) {
          const got = JSON.stringify(
            (await this.members(n, team)).map((m) => [m.name, m.role]).sort(),
          );
          if (got !== want) {
            last = `${n}: ${got}`;
            return false;
          }
        }
        return true;
      }, ms);
    } catch (err) {
      throw new Error(`${(err as Error).message}; wanted ${want}, last seen ${last}`);
    }
  }

  /** Each running node's sync drop and rejection counters (from its metrics), for reports. */
  async diagnostics(): Promise<string> {
    const out: string[] = [];
    for (const name of this.daemons.keys()) {
      const metrics = this.nodes.get(name)?.metrics;
      if (!metrics || metrics === "off") continue;
      try {
        const text = await (await fetch(`http://${metrics}/metrics`)).text();
        const lines = text.split("\n").filter((l) =>
          /^den_(sync_messages_dropped|ops_rejected|team_blocks_rejected|ops_added)_total\{/
            .test(l)
        );
        out.push(`== ${name} metrics ==`, ...lines);
      } catch (err) {
        out.push(`== ${name} metrics: ${err} ==`);
      }
    }
    return out.join("\n");
  }

  /** What every daemon (running or stopped) logged, for failure reports. */
  logs(): string {
    const live = [...this.daemons].map(([n, d]) => `== ${n} ==\n${d.log}`);
    return [...this.#pastLogs, ...live].join("\n");
  }

  async close(): Promise<void> {
    await Promise.all([...this.daemons.values()].map((d) => d.stop()));
    this.daemons.clear();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
