/**
 * `deno task demo`: two den nodes on this machine, in a temporary directory — init, start the
 * daemons, show each one's status, stop them, clean up. Later capabilities extend it.
 */
import { DaemonProcess, den, initNode } from "./lib/den_process.ts";

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
  for (const name of nodes) {
    step(`create node ${name}`);
    const home = `${dir}/${name}`;
    const { output } = await initNode(home, name);
    console.log(`$ den init --name ${name} --no-passphrase --home ${home} …`);
    console.log(output.trimEnd().replace(/^/gm, "  "));
  }
  for (const name of nodes) {
    step(`start ${name}'s daemon`);
    daemons.push(await DaemonProcess.start(`${dir}/${name}`));
    console.log(`  daemon running (pid ${daemons.at(-1)!.child.pid})`);
  }
  for (const name of nodes) {
    step(`status of ${name}`);
    await show(["status", "--home", `${dir}/${name}`]);
  }
  for (const name of nodes) {
    step(`stop ${name}`);
    await show(["goodbye", "--home", `${dir}/${name}`]);
  }
  step("done: both nodes created, ran and stopped cleanly");
} finally {
  for (const d of daemons) await d.stop();
  await Deno.remove(dir, { recursive: true });
}
