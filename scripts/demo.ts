/**
 * `deno task demo`: two den nodes on this machine, in a temporary directory — init, start the
 * daemons, show each one's status, stop them, clean up. Later capabilities extend it.
 */
import { DaemonProcess, den, initNode, waitFor } from "./lib/den_process.ts";

const dir = await Deno.makeTempDir({ prefix: "den-demo-" });
const daemons: DaemonProcess[] = [];

function step(text: string): void {
  console.log(`\n== ${text}`);
}

async function show(args: string[]): Promise<string> {
  console.log(`$ den ${args.join(" ")}`);
  const r = await den(args);
  const out = (r.stdout + r.stderr).trimEnd();
  if (out) console.log(out.replace(/^/gm, "  "));
  if (r.code !== 0) throw new Error(`den ${args[0]} exited ${r.code}`);
  return r.stdout;
}

try {
  const nodes = ["alice", "bob"];
  const listen: Record<string, string> = {};
  const fingerprint: Record<string, string> = {};
  for (const name of nodes) {
    step(`create node ${name}`);
    const home = `${dir}/${name}`;
    const { output, listen: addr } = await initNode(home, name);
    listen[name] = addr;
    fingerprint[name] = /fingerprint: (\S+)/.exec(output)![1];
    console.log(`$ den init --name ${name} --no-passphrase --listen ${addr} --home ${home} …`);
    console.log(output.trimEnd().replace(/^/gm, "  "));
  }
  for (const name of nodes) {
    step(`start ${name}'s daemon`);
    daemons.push(await DaemonProcess.start(`${dir}/${name}`));
    console.log(`  daemon running (pid ${daemons.at(-1)!.child.pid})`);
  }
  step("introduce them to each other, each pinning the other's fingerprint");
  const [a, b] = nodes;
  for (const [self, other] of [[a, b], [b, a]]) {
    await show([
      "add-peer",
      other,
      listen[other],
      "--fingerprint",
      fingerprint[other],
      "--home",
      `${dir}/${self}`,
    ]);
  }
  await waitFor("the session between alice and bob", async () => {
    const r = await den(["peers", "--json", "--home", `${dir}/${a}`]);
    return r.code === 0 &&
      JSON.parse(r.stdout).some((p: { state: string }) => p.state === "connected");
  });
  for (const name of nodes) {
    step(`status and peers of ${name}`);
    await show(["status", "--home", `${dir}/${name}`]);
    await show(["peers", "--home", `${dir}/${name}`]);
  }
  step("both ends of the session show the same short authentication string");
  await show(["peers", "verify", b, "--home", `${dir}/${a}`]);
  await show(["peers", "verify", a, "--home", `${dir}/${b}`]);
  for (const name of nodes) {
    step(`stop ${name}`);
    await show(["goodbye", "--home", `${dir}/${name}`]);
  }
  step("done: two nodes created, connected over a post-quantum session, and stopped cleanly");
} finally {
  for (const d of daemons) await d.stop();
  await Deno.remove(dir, { recursive: true });
}
