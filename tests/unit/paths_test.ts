import assert from "node:assert/strict";
import { resolvePaths } from "../../src/config/paths.ts";
import { DenError } from "../../src/errors.ts";

const envOf = (vars: Record<string, string>) => (k: string) => vars[k];

Deno.test("paths: --home puts every file directly in it", () => {
  const p = resolvePaths({ home: "/srv/den/a", env: envOf({ HOME: "/home/u" }) });
  assert.deepEqual(p, {
    home: "/srv/den/a",
    configDir: "/srv/den/a",
    dataDir: "/srv/den/a",
    runtimeDir: "/srv/den/a",
    config: "/srv/den/a/config.toml",
    identityKey: "/srv/den/a/identity.key",
    identityPub: "/srv/den/a/identity.pub",
    knownPeers: "/srv/den/a/known_peers.toml",
    db: "/srv/den/a/den.db",
    socket: "/srv/den/a/den.sock",
    lock: "/srv/den/a/daemon.lock",
  });
});

Deno.test("paths: DEN_HOME when there is no --home; --home wins over it", () => {
  const env = envOf({ DEN_HOME: "/tmp/n1", XDG_RUNTIME_DIR: "/run/user/1000" });
  assert.equal(resolvePaths({ env }).socket, "/tmp/n1/den.sock");
  assert.equal(resolvePaths({ env, home: "/tmp/n2" }).config, "/tmp/n2/config.toml");
});

Deno.test("paths: a relative home is taken from cwd and normalised", () => {
  const p = resolvePaths({ home: "nodes/../a", env: envOf({}), cwd: "/work/t" });
  assert.equal(p.home, "/work/t/a");
  assert.equal(p.db, "/work/t/a/den.db");
  assert.equal(resolvePaths({ home: "/x/./y/", env: envOf({}) }).home, "/x/y");
});

Deno.test("paths: XDG variables", () => {
  const p = resolvePaths({
    env: envOf({
      HOME: "/home/u",
      XDG_CONFIG_HOME: "/cfg",
      XDG_DATA_HOME: "/data",
      XDG_RUNTIME_DIR: "/run/user/1000",
    }),
  });
  assert.deepEqual(p, {
    home: null,
    configDir: "/cfg/den",
    dataDir: "/data/den",
    runtimeDir: "/run/user/1000/den",
    config: "/cfg/den/config.toml",
    identityKey: "/cfg/den/identity.key",
    identityPub: "/cfg/den/identity.pub",
    knownPeers: "/cfg/den/known_peers.toml",
    db: "/data/den/den.db",
    socket: "/run/user/1000/den/den.sock",
    lock: "/data/den/daemon.lock",
  });
});

Deno.test("paths: without XDG variables, under HOME; socket in the data dir", () => {
  const p = resolvePaths({ env: envOf({ HOME: "/home/u" }) });
  assert.equal(p.home, null);
  assert.equal(p.config, "/home/u/.config/den/config.toml");
  assert.equal(p.identityKey, "/home/u/.config/den/identity.key");
  assert.equal(p.knownPeers, "/home/u/.config/den/known_peers.toml");
  assert.equal(p.db, "/home/u/.local/share/den/den.db");
  assert.equal(p.lock, "/home/u/.local/share/den/daemon.lock");
  assert.equal(p.runtimeDir, "/home/u/.local/share/den");
  assert.equal(p.socket, "/home/u/.local/share/den/den.sock");
});

Deno.test("paths: empty or relative XDG values are ignored, as the XDG spec says", () => {
  const p = resolvePaths({
    env: envOf({ HOME: "/home/u", XDG_CONFIG_HOME: "", XDG_DATA_HOME: "rel", XDG_RUNTIME_DIR: "" }),
  });
  assert.equal(p.configDir, "/home/u/.config/den");
  assert.equal(p.dataDir, "/home/u/.local/share/den");
  assert.equal(p.socket, "/home/u/.local/share/den/den.sock");
});

Deno.test("paths: no home, no HOME and no XDG variables is an error", () => {
  assert.throws(
    () => resolvePaths({ env: envOf({}) }),
    (e: unknown) => {
      assert.ok(e instanceof DenError);
      assert.equal(e.code, "no_home_dir");
      assert.match(e.message, /XDG_CONFIG_HOME and HOME are unset/);
      assert.match(e.hint ?? "", /--home DIR/);
      return true;
    },
  );
  // XDG for config and data is enough without HOME.
  const p = resolvePaths({ env: envOf({ XDG_CONFIG_HOME: "/c", XDG_DATA_HOME: "/d" }) });
  assert.equal(p.socket, "/d/den/den.sock");
});

Deno.test("paths: a socket path over 100 bytes is refused with exit 2", () => {
  const long = "/tmp/" + "d".repeat(90); // socket: 5 + 90 + 9 = 104 bytes
  assert.throws(
    () => resolvePaths({ home: long, env: envOf({}) }),
    (e: unknown) => {
      assert.ok(e instanceof DenError);
      assert.equal(e.code, "socket_path_too_long");
      assert.equal(e.exit, 2);
      assert.ok(e.message.includes(`${long}/den.sock`), e.message);
      assert.match(e.message, /104 bytes/);
      assert.match(e.hint ?? "", /shorter --home/);
      return true;
    },
  );
  const fits = "/tmp/" + "d".repeat(86); // exactly 100 bytes
  assert.equal(resolvePaths({ home: fits, env: envOf({}) }).socket.length, 100);
  // Bytes, not characters: 4 x "é" is 8 bytes.
  assert.throws(
    () => resolvePaths({ home: "/tmp/" + "d".repeat(83) + "éééé", env: envOf({}) }),
    /socket_path|Unix sockets/,
  );
});
