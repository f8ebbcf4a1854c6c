/**
 * A team of real daemons on loopback for tests, benchmarks and the demo: node 0 creates the
 * team, every other node joins with an invite code, the way users do it.
 */
import { IpcClient } from "../../src/ipc/client.ts";
import { DaemonProcess, den, type DenOptions, initNode, waitFor } from "./den_process.ts";

export interface TeamNode {
  name: string;
  home: string;
  fingerprint: string;
  listen: string;
  daemon: DaemonProcess;
}

export class TeamCluster {
  readonly nodes: TeamNode[] = [];
  constructor(readonly dir: string, readonly team: string) {}

  /** Inits and starts `names`, then forms the team; `extra` goes to every `den init`. */
  static async start(
    dir: string,
    names: string[],
    opts: { team?: string; extra?: string[]; env?: DenOptions["env"] } = {},
  ): Promise<TeamCluster> {
    const c = new TeamCluster(dir, opts.team ?? "acme");
    try {
      await Promise.all(names.map(async (name) => {
        const home = `${dir}/${name}`;
        const { fingerprint, listen } = await initNode(home, name, [
          ...(opts.extra ?? []),
        ], { metrics: "off" });
        c.nodes.push({ name, home, fingerprint, listen, daemon: null as unknown as DaemonProcess });
      }));
      c.nodes.sort((a, b) => names.indexOf(a.name) - names.indexOf(b.name));
      await Promise.all(c.nodes.map(async (n) => {
        n.daemon = await DaemonProcess.start(n.home, { env: opts.env });
      }));
      await c.cli(0, ["team", "create", c.team]);
      for (let i = 1; i < c.nodes.length; i++) await c.join(i);
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  /** `den ARGS --home node`; throws with stderr unless it exits 0. */
  async cli(i: number, args: string[]): Promise<string> {
    const r = await den([...args, "--home", this.nodes[i].home]);
    if (r.code !== 0) {
      throw new Error(`den ${args.join(" ")} on ${this.nodes[i].name}: ${r.code} ${r.stderr}`);
    }
    return r.stdout;
  }

  /** Node 0 (an admin) invites node i, which joins with the code. */
  async join(i: number, inviteArgs: string[] = []): Promise<void> {
    const out = await this.cli(0, ["invite", "--team", this.team, "--json", ...inviteArgs]);
    const code = JSON.parse(out).code;
    if (!code) throw new Error(`no invite code: ${out}`);
    await this.cli(i, ["join", code]);
  }

  /** A control-socket client for node i (close it when done). */
  client(i: number): Promise<IpcClient> {
    return IpcClient.connect(`${this.nodes[i].home}/den.sock`);
  }

  /** Waits until every node lists every member. */
  async settled(timeoutMs = 20_000): Promise<void> {
    await waitFor("every node to list every member", async () => {
      for (let i = 0; i < this.nodes.length; i++) {
        const r = await den(["team", "members", this.team, "--json", "--home", this.nodes[i].home]);
        if (r.code !== 0 || JSON.parse(r.stdout).length !== this.nodes.length) return false;
      }
      return true;
    }, timeoutMs);
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.nodes.map((n) => n.daemon?.stop()));
  }
}
