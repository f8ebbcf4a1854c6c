/**
 * `deno task bench`: client start-up and idle daemon memory, each beside a bare-Deno baseline
 * measured in the same run (machines here are noisy; only the ratios travel).
 *   den version      vs  deno run of an empty script   (process start + module graph)
 *   den status       vs  den version                   (plus one control-socket round trip)
 *   daemon idle RSS  vs  an idle bare Deno process
 */
import { DaemonProcess, denCommand, initNode } from "../lib/den_process.ts";

const RUNS = Number(Deno.env.get("BENCH_RUNS") ?? 15);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeRuns(cmd: () => Deno.Command): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const out = await cmd().output();
    times.push(performance.now() - t0);
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  }
  return median(times);
}

async function rssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

const dir = await Deno.makeTempDir({ prefix: "den-bench-" });
const empty = `${dir}/empty.ts`;
const idle = `${dir}/idle.ts`;
await Deno.writeTextFile(empty, "");
await Deno.writeTextFile(idle, "setInterval(() => {}, 1000);");
const bare = (file: string) =>
  new Deno.Command(Deno.execPath(), { args: ["run", "--quiet", file], stdout: "null" });
let daemon: DaemonProcess | undefined;
let baseline: Deno.ChildProcess | undefined;
try {
  const home = `${dir}/node`;
  await initNode(home, "bench");
  daemon = await DaemonProcess.start(home);
  const tBare = await timeRuns(() => bare(empty));
  const tVersion = await timeRuns(() => denCommand(["version"]));
  const tStatus = await timeRuns(() => denCommand(["status", "--home", home]));

  baseline = new Deno.Command(Deno.execPath(), { args: ["run", "--quiet", idle] }).spawn();
  await new Promise((r) => setTimeout(r, 2000)); // let both settle after start-up
  const rssDaemon = await rssKiB(daemon.child.pid);
  const rssBare = await rssKiB(baseline.pid);

  const ms = (x: number) => `${x.toFixed(0)} ms`;
  console.log(`median of ${RUNS} runs each, deno ${Deno.version.deno}, ${Deno.build.target}`);
  console.log(`bare deno run (empty)   ${ms(tBare)}`);
  console.log(`den version             ${ms(tVersion)}   ${(tVersion / tBare).toFixed(2)}× bare`);
  console.log(`den status              ${ms(tStatus)}   ${(tStatus / tBare).toFixed(2)}× bare`);
  console.log(`idle bare deno RSS      ${(rssBare / 1024).toFixed(1)} MiB`);
  console.log(
    `idle den daemon RSS     ${(rssDaemon / 1024).toFixed(1)} MiB   ` +
      `${(rssDaemon / rssBare).toFixed(2)}× bare`,
  );
} finally {
  baseline?.kill("SIGKILL");
  await baseline?.status;
  await daemon?.stop();
  await Deno.remove(dir, { recursive: true });
}
