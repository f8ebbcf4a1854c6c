/**
 * `den service` with the real CLI: the units it prints pass `systemd-analyze verify`, its
 * refusals, a user-scope install/status/uninstall round trip, the launchd plist through
 * python3's plistlib, and the client's fallback to a system service's socket.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  den,
  denCommand,
  type DenOptions,
  freePort,
  initNode,
  waitFor,
} from "../../scripts/lib/den_process.ts";
import { planService, serviceEnvironment } from "../../src/service/service_plan.ts";

/** The first `name` on PATH, or null. */
function onPath(name: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (dir && Deno.statSync(join(dir, name)).isFile) return join(dir, name);
    } catch { /* not here */ }
  }
  return null;
}

const ANALYZE = onPath("systemd-analyze");
const PYTHON = onPath("python3");
/** systemd is PID 1 here: then a real manager would act on what the tests install. */
const SYSTEMD_RUNNING = (() => {
  try {
    return Deno.statSync("/run/systemd/system").isDirectory;
  } catch {
    return false;
  }
})();
const LINUX = Deno.build.os === "linux";
if (!LINUX) console.warn("SKIPPED systemd install tests: they need Linux");
if (!ANALYZE) console.warn("SKIPPED service unit verification: systemd-analyze is not installed");
if (!PYTHON) console.warn("SKIPPED launchd plist parsing test: python3 is not installed");
if (SYSTEMD_RUNNING) {
  console.warn("SKIPPED service start-failure test: systemd is running here and would start it");
}

/** Clean defaults for every run: no sudo, no XDG overrides leaking in from the test's shell. */
const BASE_ENV = { SUDO_USER: "", XDG_CONFIG_HOME: "", XDG_DATA_HOME: "", XDG_CACHE_HOME: "" };

function run(args: string[], env: Record<string, string> = {}, opts: DenOptions = {}) {
  return den(args, { ...opts, env: { ...BASE_ENV, ...env } });
}

async function tempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "den-svc-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes `unit` as `name` and runs `systemd-analyze [--user] verify` on it. */
async function verify(dir: string, name: string, unit: string, scope: "system" | "user") {
  const units = await Deno.makeTempDir({ dir, prefix: "units-" });
  const path = join(units, name);
  await Deno.writeTextFile(path, unit);
  const runtime = join(units, "run");
  await Deno.mkdir(runtime, { mode: 0o700 });
  const out = await new Deno.Command(ANALYZE!, {
    args: [...(scope === "user" ? ["--user"] : []), "verify", path],
    env: { XDG_RUNTIME_DIR: runtime },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  const about = stderr.split("\n").filter((l) => l.includes(name) || l.includes(path));
  assert.equal(out.code, 0, `systemd-analyze verify ${name} failed:\n${stderr}\n${unit}`);
  assert.deepEqual(about, [], `systemd-analyze complained about ${name}:\n${stderr}\n${unit}`);
}

function directive(unit: string, key: string): string[] {
  return unit.split("\n").filter((l) => l.startsWith(`${key}=`)).map((l) =>
    l.slice(key.length + 1)
  );
}

Deno.test({
  name: "service: every unit --print makes passes systemd-analyze verify",
  ignore: !ANALYZE,
  async fn() {
    await tempDir(async (dir) => {
      const home = join(dir, "n");
      await initNode(home, "n");

      const system = await run([
        "service",
        "install",
        "--print",
        "--scope",
        "system",
        "--home",
        home,
      ]);
      assert.equal(system.code, 0, system.stderr);
      assert.match(system.stderr, /^# .* \/etc\/systemd\/system\/den\.service$/m);
      assert.deepEqual(directive(system.stdout, "AmbientCapabilities"), ["CAP_NET_ADMIN"]);
      assert.match(directive(system.stdout, "ExecStart")[0], new RegExp(`--home ${home} daemon$`));
      await verify(dir, "den.service", system.stdout, "system");

      const cfg = join(dir, "cfg");
      const user = await run(["service", "install", "--print", "--scope", "user", "--home", home], {
        XDG_CONFIG_HOME: cfg,
      });
      assert.equal(user.code, 0, user.stderr);
      assert.match(user.stderr, new RegExp(`# .* ${cfg}/systemd/user/den\\.service`));
      assert.deepEqual(directive(user.stdout, "AmbientCapabilities"), []);
      await verify(dir, "den.service", user.stdout, "user");

      await Deno.writeTextFile(join(dir, "cert.pem"), "-----BEGIN CERTIFICATE-----\n");
      await Deno.writeTextFile(join(dir, "key.pem"), "-----BEGIN PRIVATE KEY-----\n");
      const tls = ["--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem")];
      const relay = await run([
        "service",
        "install",
        "--print",
        "--relay",
        "--scope",
        "system",
        "--listen",
        "0.0.0.0:443",
        ...tls,
      ]);
      assert.equal(relay.code, 0, relay.stderr);
      assert.match(relay.stderr, /den-relay\.service/);
      assert.deepEqual(directive(relay.stdout, "AmbientCapabilities"), ["CAP_NET_BIND_SERVICE"]);
      assert.deepEqual(directive(relay.stdout, "LoadCredential"), [
        `tls-cert:${dir}/cert.pem`,
        `tls-key:${dir}/key.pem`,
      ]);
      await verify(dir, "den-relay.service", relay.stdout, "system");

      const relayUser = await run(["service", "install", "--print", "--relay", "--scope", "user"], {
        XDG_CONFIG_HOME: cfg,
      });
      assert.equal(relayUser.code, 0, relayUser.stderr);
      assert.match(directive(relayUser.stdout, "ExecStart")[0], /relay --listen 0\.0\.0\.0:8765$/);
      await verify(dir, "den-relay.service", relayUser.stdout, "user");

      // A home with a blank, % and $ in it comes out quoted and escaped, and still verifies.
      const odd = join(dir, "my node %d $x");
      await initNode(odd, "odd");
      const quoted = await run([
        "service",
        "install",
        "--print",
        "--scope",
        "system",
        "--home",
        odd,
      ]);
      assert.equal(quoted.code, 0, quoted.stderr);
      assert.match(quoted.stdout, /--home "[^"]*\/my node %%d \$\$x" daemon/);
      await verify(dir, "den.service", quoted.stdout, "system");
    });
  },
});

Deno.test({
  name: "service: an encrypted identity needs --passphrase-file, a private one, as a credential",
  ignore: !ANALYZE,
  async fn() {
    await tempDir(async (dir) => {
      const home = join(dir, "enc");
      const pass = join(dir, "pass");
      await Deno.writeTextFile(pass, "correct horse battery\n", { mode: 0o600 });
      await Deno.chmod(pass, 0o600);
      const init = await run(["init", "--name", "enc", "--metrics", "off", "--home", home], {
        DEN_PASSPHRASE: "correct horse battery",
      });
      assert.equal(init.code, 0, init.stderr);

      const refused = await run(["service", "install", "--print", "--home", home]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /is encrypted, and a service cannot prompt/);
      assert.match(refused.stderr, /den: hint: .*--passphrase-file FILE/);
      assert.equal(refused.stdout, "", "nothing printed when refused");

      await Deno.chmod(pass, 0o644);
      const open = await run([
        "service",
        "install",
        "--print",
        "--home",
        home,
        "--passphrase-file",
        pass,
      ]);
      assert.equal(open.code, 1);
      assert.match(open.stderr, /others may read it/);
      assert.match(open.stderr, /den: hint: chmod 600 /);

      await Deno.chmod(pass, 0o600);
      const ok = await run([
        "service",
        "install",
        "--print",
        "--scope",
        "system",
        "--home",
        home,
        "--passphrase-file",
        pass,
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(directive(ok.stdout, "LoadCredential"), [`passphrase:${pass}`]);
      assert.match(
        directive(ok.stdout, "ExecStart")[0],
        /daemon --passphrase-file \$\{CREDENTIALS_DIRECTORY\}\/passphrase$/,
      );
      await verify(dir, "den.service", ok.stdout, "system");
    });
  },
});

Deno.test("service: refuses without an identity, and flags that do not fit", async () => {
  await tempDir(async (dir) => {
    const empty = join(dir, "none");
    const none = await run(["service", "install", "--print", "--home", empty]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /there is no identity at .*identity\.key/);
    assert.match(none.stderr, new RegExp(`den: hint: .*den init --name NAME --home ${empty}`));

    const cases: [string[], RegExp][] = [
      [["--listen", "0.0.0.0:443"], /--listen configures the relay service and needs --relay/],
      [["--relay", "--passphrase-file", "x"], /--passphrase-file is for the daemon service/],
      [["--relay", "--tls-cert", "x"], /--tls-cert needs --tls-key/],
      [["--relay", "--listen", "nope"], /--listen: "nope" is not HOST:PORT/],
      [["--scope", "everywhere"], /--scope: found "everywhere", allowed: system, user/],
      [["--scope", "user", "--user", "root"], /--user needs --scope system/],
    ];
    for (const [flags, message] of cases) {
      const r = await run(["service", "install", "--print", ...flags]);
      assert.equal(r.code, 2, `${flags.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const home = join(dir, "n");
    await initNode(home, "n");
    const stranger = await run([
      "service",
      "install",
      "--print",
      "--scope",
      "system",
      "--user",
      "no-such-user-den",
      "--home",
      home,
    ]);
    assert.equal(stranger.code, 1);
    assert.match(stranger.stderr, /there is no user named no-such-user-den/);
  });
});

Deno.test({
  name: "service: --scope user --no-start installs, is idempotent, reports, uninstalls",
  ignore: !LINUX,
  fn: () =>
    tempDir(async (dir) => {
      const home = join(dir, "n");
      await initNode(home, "n");
      const cfg = join(dir, "cfg");
      const env = { XDG_CONFIG_HOME: cfg, HOME: dir };
      const unitPath = join(cfg, "systemd", "user", "den.service");
      const install = ["service", "install", "--scope", "user", "--no-start", "--home", home];

      const first = await run(install, env);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, new RegExp(`wrote ${unitPath}`));
      assert.match(first.stdout, /not started \(--no-start\)/);
      assert.match(first.stdout, /systemctl --user enable --now den\.service/);
      assert.match(first.stderr, /loginctl enable-linger/);
      const printed = await run(
        ["service", "install", "--print", "--scope", "user", "--home", home],
        env,
      );
      assert.equal(
        await Deno.readTextFile(unitPath),
        printed.stdout,
        "--print shows what is written",
      );

      const again = await run(install, env);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, new RegExp(`already installed: ${unitPath}`));

      await Deno.writeTextFile(unitPath, printed.stdout.replace("RestartSec=2", "RestartSec=9"));
      const differs = await run(install, env);
      assert.equal(differs.code, 1);
      assert.match(differs.stderr, /exists and differs .* it would be replaced/s);
      assert.match(differs.stderr, /- RestartSec=9\n\+ RestartSec=2/);
      assert.match(differs.stderr, /den: hint: .*--force/);
      const forced = await run([...install, "--force"], env);
      assert.equal(forced.code, 0, forced.stderr);
      assert.match(forced.stdout, /replaced /);
      assert.equal(await Deno.readTextFile(unitPath), printed.stdout);

      const status = await run(
        ["service", "status", "--scope", "user", "--json", "--home", home],
        env,
      );
      assert.equal(status.code, 3, status.stderr);
      const s = JSON.parse(status.stdout);
      assert.equal(s.kind, "daemon");
      assert.equal(s.scope, "user");
      assert.equal(s.manager, "systemd");
      assert.equal(s.unit, "den.service");
      assert.equal(s.path, unitPath);
      assert.equal(s.installed, true);
      assert.equal(s.active, false);
      for (const key of ["enabled", "state", "pid", "since"]) assert.ok(key in s, `no ${key}`);
      const text = await run(["service", "status", "--scope", "user"], env);
      assert.equal(text.code, 3);
      assert.match(text.stdout, /journalctl --user -u den/);
      if (!SYSTEMD_RUNNING) assert.match(text.stdout, /problem .*cannot reach the service manager/);

      const removed = await run(["service", "uninstall", "--scope", "user", "--home", home], env);
      assert.equal(removed.code, 0, removed.stderr);
      assert.match(removed.stdout, new RegExp(`removed ${unitPath}`));
      assert.match(removed.stdout, new RegExp(`kept: the identity, config and secrets in ${home}`));
      await assert.rejects(Deno.lstat(unitPath), Deno.errors.NotFound);
      const twice = await run(["service", "uninstall", "--scope", "user"], env);
      assert.equal(twice.code, 0, twice.stderr);
      assert.match(twice.stdout, /not installed/);
      const after = await run(["service", "status", "--scope", "user", "--json"], env);
      assert.equal(after.code, 3);
      assert.equal(JSON.parse(after.stdout).installed, false);
    }),
});

Deno.test({
  name: "service: a failing systemctl is reported with its stderr and the unit's path",
  ignore: SYSTEMD_RUNNING || !LINUX,
  async fn() {
    await tempDir(async (dir) => {
      const home = join(dir, "n");
      await initNode(home, "n");
      const cfg = join(dir, "cfg");
      const r = await run(["service", "install", "--scope", "user", "--home", home], {
        XDG_CONFIG_HOME: cfg,
        HOME: dir,
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /den: error: (systemctl --user daemon-reload failed|.*not found)/);
      assert.match(r.stderr, new RegExp(`unit file is at ${cfg}/systemd/user/den\\.service`));
    });
  },
});

Deno.test({
  name: "service: the launchd plist parses with plistlib and carries the right values",
  ignore: !PYTHON,
  async fn() {
    await tempDir(async (dir) => {
      const dirs = {
        configDir: "/Users/a&b/<cfg>/den",
        dataDir: "/Users/a&b/Library/den's data/den",
        socketInDataDir: true,
      };
      const plan = planService({
        os: "darwin",
        kind: "daemon",
        scope: "system",
        user: { name: "ab", uid: 501, gid: 20, home: "/Users/a&b" },
        unitDir: "/Library/LaunchDaemons",
        program: { argv: ["/usr/local/bin/den"], standalone: true, denoDir: null },
        home: null,
        dirs,
        environment: serviceEnvironment("/Users/a&b", dirs, null),
        passphraseFile: '/Users/a&b/"pass"',
        relay: null,
        logDir: "/Library/Logs/den",
      });
      const file = join(dir, "dev.den.daemon.plist");
      await Deno.writeTextFile(file, plan.content);
      const out = await new Deno.Command(PYTHON!, {
        args: [
          "-c",
          "import plistlib,sys,json; print(json.dumps(plistlib.load(open(sys.argv[1],'rb'))))",
          file,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const p = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.equal(p.Label, "dev.den.daemon");
      assert.deepEqual(p.ProgramArguments, [
        "/usr/local/bin/den",
        "daemon",
        "--passphrase-file",
        '/Users/a&b/"pass"',
      ]);
      assert.deepEqual(p.KeepAlive, { SuccessfulExit: false });
      assert.equal(p.RunAtLoad, true);
      assert.equal(p.UserName, "ab");
      assert.deepEqual(p.EnvironmentVariables, {
        HOME: "/Users/a&b",
        XDG_CONFIG_HOME: "/Users/a&b/<cfg>",
        XDG_DATA_HOME: "/Users/a&b/Library/den's data",
      });
      assert.equal(p.StandardErrorPath, "/Library/Logs/den/daemon.log");
    });
  },
});

/** Starts `den daemon` (no --home) with `env`; resolves once `socket` is there. */
async function startDaemon(env: Record<string, string>, socket: string) {
  const child = denCommand(["daemon"], { env: { ...BASE_ENV, ...env } }).spawn();
  child.stdout.cancel();
  child.stderr.cancel();
  let exited = false;
  child.status.then(() => exited = true);
  try {
    await waitFor(`socket ${socket}`, async () => {
      if (exited) throw new Error("den daemon exited early");
      return await isSocket(socket);
    });
  } catch (err) {
    await stopDaemon(child);
    throw err;
  }
  return child;
}

async function stopDaemon(child: Deno.ChildProcess) {
  try {
    child.kill("SIGKILL");
  } catch { /* gone */ }
  await child.status;
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await Deno.lstat(path)).isSocket === true;
  } catch {
    return false;
  }
}

Deno.test("service: a client finds a system service's socket in the data dir", async () => {
  const dir = await Deno.makeTempDir({ prefix: "den-sock-" });
  // What a systemd system service sees: HOME, and no XDG_RUNTIME_DIR.
  const service = { HOME: dir, XDG_RUNTIME_DIR: "" };
  // A login shell: XDG_RUNTIME_DIR is set, and holds no den socket.
  const shell = { HOME: dir, XDG_RUNTIME_DIR: join(dir, "run") };
  const dataSocket = join(dir, ".local", "share", "den", "den.sock");
  const runtimeSocket = join(dir, "run", "den", "den.sock");
  const children: Deno.ChildProcess[] = [];
  try {
    const init = await run([
      "init",
      "--name",
      "svc",
      "--no-passphrase",
      "--listen",
      `127.0.0.1:${freePort()}`,
      "--metrics",
      "off",
    ], service);
    assert.equal(init.code, 0, init.stderr);
    // A login session has its XDG_RUNTIME_DIR; den's directory in it is the daemon's to make.
    await Deno.mkdir(join(dir, "run"), { mode: 0o700 });

    const first = await startDaemon(service, dataSocket);
    children.push(first);
    const status = await run(["status", "--json"], shell);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).name, "svc");

    // A crash leaves the data dir's socket behind. A daemon started from the shell still binds
    // $XDG_RUNTIME_DIR/den/den.sock: the fallback is for clients only.
    await stopDaemon(first);
    assert.ok(await isSocket(dataSocket), "SIGKILL leaves the socket file");
    const second = await startDaemon(shell, runtimeSocket);
    children.push(second);
    assert.ok(await isSocket(dataSocket), "the stale socket was not touched");
    assert.equal((await Deno.stat(join(dir, "run", "den"))).mode! & 0o777, 0o700);
    const again = await run(["status", "--json"], shell);
    assert.equal(again.code, 0, again.stderr);
    const bye = await run(["goodbye"], shell);
    assert.equal(bye.code, 0, bye.stderr);
    assert.equal((await second.status).code, 0);
  } finally {
    for (const c of children) await stopDaemon(c);
    await Deno.remove(dir, { recursive: true });
  }
});
