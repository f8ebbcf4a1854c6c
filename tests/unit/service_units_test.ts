/** The systemd units and launchd plists den service writes: directives, capabilities, quoting. */
import assert from "node:assert/strict";
import { DenError } from "../../src/errors.ts";
import { launchdPlist, xmlEscape } from "../../src/service/launchd_plist.ts";
import {
  lineChanges,
  type PlanInput,
  planService,
  serviceEnvironment,
} from "../../src/service/service_plan.ts";
import { denTaskFlags } from "../../src/util/den_task.ts";
import { findPasswdEntry, parseDscl } from "../../src/service/service_user.ts";
import { parseLaunchctlPrint, parseSystemctlShow } from "../../src/service/status_parse.ts";
import { execWord, pathList } from "../../src/service/systemd_quote.ts";
import { clientSocketFallback } from "../../src/cli/context.ts";
import { resolvePaths } from "../../src/config/paths.ts";

const ALICE = { name: "alice", uid: 1000, gid: 1000, home: "/home/alice" };
const ROOT = { name: "root", uid: 0, gid: 0, home: "/root" };

function daemonInput(over: Partial<PlanInput> = {}): PlanInput {
  const dirs = {
    configDir: "/home/alice/.config/den",
    dataDir: "/home/alice/.local/share/den",
    socketInDataDir: true,
  };
  return {
    os: "linux",
    kind: "daemon",
    scope: "system",
    user: ALICE,
    unitDir: "/etc/systemd/system",
    program: { argv: ["/usr/local/bin/den"], standalone: true, denoDir: null },
    home: null,
    dirs,
    environment: serviceEnvironment(ALICE.home, dirs, null),
    passphraseFile: null,
    relay: null,
    logDir: "/Library/Logs/den",
    ...over,
  };
}

function relayInput(port: number, over: Partial<PlanInput> = {}): PlanInput {
  return daemonInput({
    kind: "relay",
    user: ROOT,
    dirs: null,
    environment: [],
    relay: {
      listen: `0.0.0.0:${port}`,
      port,
      tlsCert: "/etc/den/cert.pem",
      tlsKey: "/etc/den/key.pem",
      metrics: null,
      reflector: null,
    },
    ...over,
  });
}

/** The unit's `Key=Value` lines (comments and sections left out). */
function directives(unit: string): string[] {
  return unit.split("\n").filter((l) => /^[A-Za-z]+=/.test(l));
}

function values(unit: string, key: string): string[] {
  return directives(unit).filter((l) => l.startsWith(`${key}=`)).map((l) =>
    l.slice(key.length + 1)
  );
}

Deno.test("service units: the system daemon unit has every directive, with CAP_NET_ADMIN", () => {
  const plan = planService(daemonInput());
  assert.equal(plan.path, "/etc/systemd/system/den.service");
  assert.equal(plan.unit, "den.service");
  const unit = plan.content;
  for (
    const d of [
      "Type=simple",
      "User=alice",
      "ExecStart=/usr/local/bin/den daemon",
      "Environment=HOME=/home/alice",
      "UnsetEnvironment=XDG_RUNTIME_DIR",
      "Restart=on-failure",
      "RestartSec=2",
      "TimeoutStopSec=15",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ReadWritePaths=/home/alice/.config/den /home/alice/.local/share/den",
      "PrivateTmp=yes",
      "ProtectKernelModules=yes",
      "ProtectKernelTunables=yes",
      "ProtectControlGroups=yes",
      "RestrictSUIDSGID=yes",
      "LockPersonality=yes",
      "RestrictRealtime=yes",
      "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
      "AmbientCapabilities=CAP_NET_ADMIN",
      "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
      "After=network-online.target",
      "Wants=network-online.target",
      "WantedBy=multi-user.target",
    ]
  ) assert.ok(directives(unit).includes(d), `missing ${d} in\n${unit}`);
  assert.doesNotMatch(unit, /MemoryDenyWriteExecute/, "V8's JIT needs W+X memory");
  assert.deepEqual(plan.ownedDirs, ["/home/alice/.local/share/den"]);
  // Only defaults under HOME: no XDG variable is needed.
  assert.deepEqual(values(unit, "Environment"), ["HOME=/home/alice"]);
});

Deno.test("service units: root gets no User=; user scope gets no capabilities", () => {
  const root = planService(daemonInput({ user: ROOT })).content;
  assert.equal(values(root, "User").length, 0);
  assert.deepEqual(values(root, "AmbientCapabilities"), ["CAP_NET_ADMIN"]);

  const dirs = { ...daemonInput().dirs!, socketInDataDir: false };
  const user = planService(daemonInput({
    scope: "user",
    unitDir: "/home/alice/.config/systemd/user",
    dirs,
  }));
  assert.equal(user.path, "/home/alice/.config/systemd/user/den.service");
  const unit = user.content;
  for (const gone of ["User", "AmbientCapabilities", "CapabilityBoundingSet", "Wants"]) {
    assert.equal(values(unit, gone).length, 0, `${gone} in a user unit`);
  }
  assert.deepEqual(values(unit, "WantedBy"), ["default.target"]);
  assert.deepEqual(values(unit, "RuntimeDirectory"), ["den"], "socket in $XDG_RUNTIME_DIR/den");
  assert.deepEqual(values(unit, "RuntimeDirectoryMode"), ["0700"]);
  assert.ok(directives(unit).includes("ProtectSystem=strict"));
  assert.ok(user.notes.some((n) => /sudo den service install/.test(n)), "says how to get the VPN");
  assert.ok(user.notes.some((n) => /loginctl enable-linger alice/.test(n)));
});

Deno.test("service units: the relay on :443 gets CAP_NET_BIND_SERVICE, on :8765 none", () => {
  const low = planService(relayInput(443)).content;
  assert.equal(planService(relayInput(443)).path, "/etc/systemd/system/den-relay.service");
  assert.deepEqual(values(low, "AmbientCapabilities"), ["CAP_NET_BIND_SERVICE"]);
  assert.deepEqual(values(low, "CapabilityBoundingSet"), ["CAP_NET_BIND_SERVICE"]);
  for (const d of ["DynamicUser=yes", "ProtectHome=yes", "PrivateDevices=yes"]) {
    assert.ok(directives(low).includes(d), `missing ${d}`);
  }
  assert.deepEqual(values(low, "LoadCredential"), [
    "tls-cert:/etc/den/cert.pem",
    "tls-key:/etc/den/key.pem",
  ]);
  assert.deepEqual(values(low, "ExecStart"), [
    "/usr/local/bin/den relay --listen 0.0.0.0:443 --tls-cert ${CREDENTIALS_DIRECTORY}/tls-cert " +
    "--tls-key ${CREDENTIALS_DIRECTORY}/tls-key",
  ]);

  const high = planService(relayInput(8765)).content;
  assert.equal(values(high, "AmbientCapabilities").length, 0);
  assert.deepEqual(values(high, "CapabilityBoundingSet"), [""], "an empty bounding set");

  // The UDP reflector binds its own ports: a low one needs the capability too.
  const withReflector = (reflector: string) => {
    const input = relayInput(8765);
    return planService({ ...input, relay: { ...input.relay!, reflector } }).content;
  };
  const lowReflector = withReflector("0.0.0.0:500");
  assert.deepEqual(values(lowReflector, "AmbientCapabilities"), ["CAP_NET_BIND_SERVICE"]);
  assert.match(values(lowReflector, "ExecStart")[0], / --reflector 0\.0\.0\.0:500$/);
  assert.equal(values(withReflector("off"), "AmbientCapabilities").length, 0);
  assert.match(values(withReflector("off"), "ExecStart")[0], / --reflector off$/);

  const user = planService(relayInput(443, { scope: "user" })).content;
  assert.equal(values(user, "CapabilityBoundingSet").length, 0);
  assert.equal(values(user, "DynamicUser").length, 0);
  assert.equal(values(user, "LoadCredential").length, 0, "a user relay reads its files itself");
  assert.match(values(user, "ExecStart")[0], /--tls-cert \/etc\/den\/cert\.pem/);
});

Deno.test("service units: a relay from source runs without DynamicUser, and says why", () => {
  const plan = planService(relayInput(8765, {
    program: {
      argv: ["/usr/bin/deno", "run", "--allow-net", "/src/den/main.ts"],
      standalone: false,
      denoDir: "/root/.cache/deno",
    },
  }));
  assert.equal(values(plan.content, "DynamicUser").length, 0);
  assert.match(plan.content, /^# .*DynamicUser= is left out/m);
  assert.deepEqual(values(plan.content, "ProtectHome"), ["read-only"]);
  assert.deepEqual(values(plan.content, "ReadWritePaths"), ["-/root/.cache/deno"]);
  assert.ok(plan.notes.some((n) => /compiled den binary/.test(n)));
});

Deno.test("service units: a passphrase file is a credential in system scope", () => {
  const unit = planService(daemonInput({ passphraseFile: "/home/alice/den.pass" })).content;
  assert.deepEqual(values(unit, "LoadCredential"), ["passphrase:/home/alice/den.pass"]);
  assert.deepEqual(values(unit, "ExecStart"), [
    "/usr/local/bin/den daemon --passphrase-file ${CREDENTIALS_DIRECTORY}/passphrase",
  ]);
  const user = planService(daemonInput({ scope: "user", passphraseFile: "/home/alice/den.pass" }));
  assert.deepEqual(values(user.content, "ExecStart"), [
    "/usr/local/bin/den daemon --passphrase-file /home/alice/den.pass",
  ]);
});

Deno.test("service units: spaces, quotes, % and $ in paths are escaped", () => {
  const dirs = {
    configDir: "/srv/my den/100%/cfg",
    dataDir: '/srv/$a"b\\c/den',
    socketInDataDir: true,
  };
  const unit = planService(daemonInput({
    home: "/srv/my den/$HOME%",
    dirs,
    environment: serviceEnvironment("/home/alice", dirs, null),
    passphraseFile: "/srv/pass %n",
  })).content;
  assert.deepEqual(values(unit, "ExecStart"), [
    '/usr/local/bin/den --home "/srv/my den/$$HOME%%" daemon ' +
    "--passphrase-file ${CREDENTIALS_DIRECTORY}/passphrase",
  ]);
  assert.deepEqual(values(unit, "Environment"), [
    "HOME=/home/alice",
    '"XDG_CONFIG_HOME=/srv/my den/100%%"',
    '"XDG_DATA_HOME=/srv/$a\\"b\\\\c"',
  ]);
  assert.deepEqual(values(unit, "ReadWritePaths"), [
    '"/srv/my den/100%%/cfg" "/srv/$a\\"b\\\\c/den"',
  ]);
  assert.deepEqual(values(unit, "LoadCredential"), ["passphrase:/srv/pass %%n"]);
  assert.equal(execWord("a;b", "x"), '"a;b"');
  assert.equal(execWord("", "x"), '""');
  assert.equal(pathList(["/a"], ["/b c"]), '/a "-/b c"');
});

Deno.test("service units: a newline or other control character is refused, naming the value", () => {
  for (
    const input of [
      daemonInput({ home: "/srv/a\nExecStartPre=/bin/sh" }),
      daemonInput({ passphraseFile: "/srv/pass\n" }),
      daemonInput({ environment: [["HOME", "/home/a\rb"]] }),
      relayInput(443, { scope: "user", os: "darwin", unitDir: "/x", logDir: "/l\u0007" }),
    ]
  ) {
    assert.throws(() => planService(input), (err) => {
      assert.ok(err instanceof DenError);
      assert.equal(err.code, "service_bad_value");
      assert.match(err.message, /control character/);
      assert.match(err.message, /\\n|\\r|\\u0007/, "the value is shown escaped");
      return true;
    });
  }
});

Deno.test("service units: launchd plist for the daemon, with XML escaping", () => {
  const plan = planService(daemonInput({
    os: "darwin",
    unitDir: "/Library/LaunchDaemons",
    home: "/Users/a&b/<den>",
  }));
  assert.equal(plan.path, "/Library/LaunchDaemons/dev.den.daemon.plist");
  assert.equal(plan.manager, "launchd");
  assert.match(plan.content, /<string>\/Users\/a&amp;b\/&lt;den&gt;<\/string>/);
  assert.match(plan.content, /<key>UserName<\/key>\s*<string>alice<\/string>/);
  assert.match(plan.content, /<string>\/Library\/Logs\/den\/daemon\.log<\/string>/);
  assert.ok(plan.ownedDirs.includes("/Library/Logs/den"));
  assert.equal(xmlEscape(`&<>"'`), "&amp;&lt;&gt;&quot;&apos;");
  const plain = launchdPlist({
    label: "dev.den.relay",
    programArguments: ["/usr/local/bin/den", "relay"],
    environment: [],
    userName: null,
    logPath: "/l",
  });
  assert.doesNotMatch(plain, /EnvironmentVariables|UserName/);
  assert.doesNotMatch(plain.replace(/<!--.*-->/, ""), /--/, "no -- outside the one comment");
});

Deno.test("service units: environment names XDG variables only where dirs differ from HOME's", () => {
  const dirs = {
    configDir: "/home/a/.config/den",
    dataDir: "/data/den",
    socketInDataDir: true,
  };
  assert.deepEqual(serviceEnvironment("/home/a", dirs, null), [
    ["HOME", "/home/a"],
    ["XDG_DATA_HOME", "/data"],
  ]);
  // With a node home, config and data are in it: only HOME.
  assert.deepEqual(serviceEnvironment("/home/a", dirs, "/srv/n"), [["HOME", "/home/a"]]);
});

Deno.test("service parts: deno.json task flags, passwd and dscl entries, status output", () => {
  assert.deepEqual(
    denTaskFlags(JSON.stringify({
      tasks: { den: "deno run --quiet --unstable-net --allow-read main.ts" },
    })),
    ["--unstable-net", "--allow-read"],
  );
  assert.throws(() => denTaskFlags("{}"), /den" task/);

  const passwd =
    "root:x:0:0:root:/root:/bin/bash\nbad line\nalice:x:1000:100:A:/home/alice:/bin/sh\n";
  assert.deepEqual(findPasswdEntry(passwd, "alice"), {
    name: "alice",
    uid: 1000,
    gid: 100,
    home: "/home/alice",
  });
  assert.equal(findPasswdEntry(passwd, "1000")?.name, "alice");
  assert.equal(findPasswdEntry(passwd, "bob"), null);
  assert.deepEqual(
    parseDscl("a", "NFSHomeDirectory: /Users/a\nPrimaryGroupID: 20\nUniqueID: 501\n"),
    { name: "a", uid: 501, gid: 20, home: "/Users/a" },
  );

  const show = parseSystemctlShow(
    "LoadState=loaded\nUnitFileState=enabled\nActiveState=active\nSubState=running\n" +
      "MainPID=4242\nActiveEnterTimestamp=Tue 2025-01-07 15:28:48 UTC\nExecMainStatus=0\n",
  );
  assert.deepEqual(
    [show.enabled, show.active, show.state, show.subState, show.pid],
    [true, true, "active", "running", 4242],
  );
  assert.equal(show.since, "Tue 2025-01-07 15:28:48 UTC");
  const gone = parseSystemctlShow("LoadState=not-found\nActiveState=inactive\nMainPID=0\n");
  assert.deepEqual([gone.enabled, gone.active, gone.pid], [false, false, null]);
  const launchd = parseLaunchctlPrint(
    "system/dev.den.daemon = {\n\tstate = running\n\tpid = 77\n\tlast exit code = 0\n}\n",
  );
  assert.deepEqual([launchd.active, launchd.pid, launchd.lastExit], [true, 77, "0"]);

  assert.deepEqual(lineChanges("a\nb\nc", "a\nc\nd"), ["- b", "+ d"]);
});

Deno.test("client socket: falls back to the data dir's socket only when the usual one is missing", () => {
  const env = (vars: Record<string, string>) => (k: string) => vars[k];
  const paths = resolvePaths({ env: env({ HOME: "/h", XDG_RUNTIME_DIR: "/run/user/1" }) });
  const fallback = "/h/.local/share/den/den.sock";
  const only = (...present: string[]) => (p: string) => present.includes(p);
  assert.equal(clientSocketFallback(paths, only(fallback)).socket, fallback);
  assert.deepEqual(clientSocketFallback(paths, only(fallback)), { ...paths, socket: fallback });
  assert.equal(clientSocketFallback(paths, only(paths.socket, fallback)).socket, paths.socket);
  assert.equal(clientSocketFallback(paths, only()).socket, paths.socket);
  const home = resolvePaths({ home: "/n", env: env({ XDG_RUNTIME_DIR: "/run/user/1" }) });
  assert.equal(clientSocketFallback(home, () => true), home, "a node home is never redirected");
});
