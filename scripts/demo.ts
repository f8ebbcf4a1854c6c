/**
 * `deno task demo`: den nodes on this machine, in a temporary directory — init, start the daemons,
 * connect alice and bob directly, then carol (no address at all) to alice through a relay, show
 * status, peers and pings; then alice makes a team, invites bob and carol, and a secret set on
 * alice is read on carol (through the relay) and bob; alice messages carol over the mesh; two
 * people chat in a relay room with no daemon at all; stop everything, clean up.
 */
import {
  DaemonProcess,
  den,
  denCommand,
  initNode,
  startRelay,
  waitFor,
} from "./lib/den_process.ts";

const dir = await Deno.makeTempDir({ prefix: "den-demo-" });
const daemons: DaemonProcess[] = [];
let relay: { stop: () => Promise<void> } | null = null;

function step(text: string): void {
  console.log(`\n== ${text}`);
}

async function show(args: string[], stdin?: string): Promise<string> {
  const typed = stdin ? `echo ${JSON.stringify(stdin.trim())} | ` : "";
  console.log(`$ ${typed}den ${args.join(" ")}`);
  const r = await den(args, { stdin });
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
    const { output, listen: addr, fingerprint: fp } = await initNode(home, name);
    listen[name] = addr;
    fingerprint[name] = fp;
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

  step("start a relay (on a VPS in real life) for a node nobody can dial");
  const started = await startRelay();
  relay = started;
  const url = started.url;
  console.log(`$ den relay --listen ${url.slice("ws://".length)} --metrics off`);
  step("carol knows only alice's fingerprint and the relay; alice adds the relay to her config");
  const carolHome = `${dir}/carol`;
  const carol = await initNode(carolHome, "carol", ["--relay", url]);
  console.log(`$ den init --name carol --no-passphrase --relay ${url} --home ${carolHome} …`);
  const aliceConfig = `${dir}/${a}/config.toml`;
  const config = await Deno.readTextFile(aliceConfig);
  await Deno.writeTextFile(aliceConfig, `${config}\n[relay]\nurls = ["${url}"]\n`);
  await show(["reload", "--home", `${dir}/${a}`]);
  await show(["add-peer", a, "--fingerprint", fingerprint[a], "--home", carolHome]);
  await show(["add-peer", "carol", "--fingerprint", carol.fingerprint, "--home", `${dir}/${a}`]);
  daemons.push(await DaemonProcess.start(carolHome));
  await waitFor("carol's session through the relay", async () => {
    const r = await den(["peers", "--json", "--home", carolHome]);
    return r.code === 0 &&
      JSON.parse(r.stdout).some((p: { state: string }) => p.state === "connected");
  });
  await show(["peers", "--home", carolHome]);
  await show(["ping", a, "--count", "2", "--home", carolHome]);
  await show(["ping", b, "--count", "2", "--home", `${dir}/${a}`]);

  const home = (n: string) => `${dir}/${n}`;
  step("alice creates a team and invites bob and carol with single-use codes");
  await show(["team", "create", "acme", "--home", home(a)]);
  for (const who of [b, "carol"]) {
    const out = await den(["invite", "--team", "acme", "--json", "--home", home(a)]);
    const code = JSON.parse(out.stdout).code as string;
    console.log(`$ den invite --team acme --home …/${a}   → code ${code.slice(0, 24)}…`);
    console.log(`$ den join ${code.slice(0, 24)}… --home …/${who}`);
    const r = await den(["join", code, "--home", home(who)]);
    console.log((r.stdout + r.stderr).trimEnd().replace(/^/gm, "  "));
    if (r.code !== 0) throw new Error(`den join exited ${r.code}`);
  }
  await waitFor("carol to list three members", async () => {
    const r = await den(["team", "members", "acme", "--json", "--home", home("carol")]);
    return r.code === 0 && JSON.parse(r.stdout).length === 3;
  });
  await show(["team", "members", "acme", "--home", home("carol")]);
  step("alice sets a secret; it is encrypted on her machine for each member");
  await show([
    "env",
    "set",
    "DATABASE_URL=postgres://app:s3cret@db/app",
    "--team",
    "acme",
    "--home",
    home(a),
  ]);
  await waitFor("carol to read alice's secret", async () => {
    const r = await den(["env", "get", "DATABASE_URL", "--team", "acme", "--home", home("carol")]);
    return r.code === 0 && r.stdout.trim() === "postgres://app:s3cret@db/app";
  });
  await show(["env", "get", "DATABASE_URL", "--team", "acme", "--home", home("carol")]);
  await show(["env", "list", "--team", "acme", "--home", home(b)]);
  await show(["team", "log", "acme", "--home", home(b)]);

  step("team chat: alice writes to carol over the mesh; carol opens her chat later");
  await show(["chat", "@carol", "--home", home(a)], "the database moved to db2, see you at 3\n");
  await show(["chat", "@alice", "--home", home("carol")], "");

  step("room chat: two people, a room code and the relay; no daemon, nothing on disk");
  await roomChat(url);

  for (const name of [...nodes, "carol"]) {
    step(`stop ${name}`);
    await show(["goodbye", "--home", `${dir}/${name}`]);
  }
  step(
    "done: three nodes, sessions direct and through a blind relay, a team sharing a secret, chat",
  );
} finally {
  for (const d of daemons) await d.stop();
  await relay?.stop();
  await Deno.remove(dir, { recursive: true });
}

/** Two `den chat ROOM` clients without a terminal: each sends a line, then the first quits. */
async function roomChat(url: string): Promise<void> {
  const room = "DEMOROOM42";
  const people = ["one", "two"].map((who) => {
    console.log(`$ den chat ${room} --relay ${url}        # person ${who}`);
    const child = denCommand(["chat", room, "--relay", url], { stdin: "" }).spawn();
    const writer = child.stdin.getWriter();
    let out = "";
    const read = child.stdout.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (t) => void (out += t) }),
    );
    child.stderr.cancel();
    const say = (line: string) => writer.write(new TextEncoder().encode(`${line}\n`));
    return { who, child, say, writer, read, output: () => out };
  });
  await people[0].say("hello from person one");
  await people[1].say("hi one, the words match");
  for (const p of people) {
    await waitFor(
      `person ${p.who} to get a message`,
      () => Promise.resolve(p.output().includes("peer:")),
    );
  }
  await people[0].say("/quit");
  for (const p of people) {
    await p.writer.close().catch(() => {});
    await p.child.status;
    await p.read;
    console.log(`  person ${p.who}:\n${p.output().trimEnd().replace(/^/gm, "    ")}`);
  }
}
