import assert from "node:assert/strict";
import { DEFAULTS, METRICS_PORT, PEER_PORT, RELAY_PORT } from "../../src/config/defaults.ts";
import { loadConfig, MAX_CONFIG_BYTES, parseConfig } from "../../src/config/load.ts";
import { lineLocator } from "../../src/config/locate.ts";
import { ConfigError, type ConfigIssue } from "../../src/config/schema.ts";
import { renderInitialConfig, writeConfigFile } from "../../src/config/write.ts";
import { DenError } from "../../src/errors.ts";

const FP = "zzyyxkiso5x74p6atv4gscedewvmgvf34x6ela3w2cbceibhrh5q";

/** The ConfigError `source` must raise. */
function invalid(source: string): ConfigError {
  try {
    parseConfig(source, "config.toml");
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail("config was accepted");
}

/** The only issue `source` raises. */
function onlyIssue(source: string): ConfigIssue {
  const err = invalid(source);
  assert.equal(err.issues.length, 1, err.message);
  return err.issues[0];
}

const NODE = '[node]\nname = "alice"\n';

Deno.test("config: a minimal file gets every default", () => {
  const c = parseConfig(NODE, "config.toml");
  assert.deepEqual(c, {
    node: {
      name: "alice",
      listen: "0.0.0.0:7834",
      metrics: "127.0.0.1:9000",
      log_format: "text",
      log_level: "info",
    },
    peers: [],
    relay: { urls: [] },
    networks: {},
  });
  assert.equal(DEFAULTS.node.listen, `0.0.0.0:${PEER_PORT}`);
  assert.equal(DEFAULTS.node.metrics, `127.0.0.1:${METRICS_PORT}`);
  assert.deepEqual([PEER_PORT, RELAY_PORT, METRICS_PORT], [7834, 8765, 9000]);
  assert.ok(Object.isFrozen(DEFAULTS) && Object.isFrozen(DEFAULTS.networks));
});

Deno.test("config: a full file with every section parses, defaults filled in", () => {
  const c = parseConfig(
    `
[node]
name = "alice.laptop"
listen = "[::]:7834"
metrics = "off"
log_format = "json"
log_level = "debug"

[[peers]]
name = "bob"
address = "bob.example.org:7834"
fingerprint = "${FP.toUpperCase().match(/.{4}/g)!.join(" ")}"

[[peers]]
name = "carol"

[relay]
urls = ["wss://relay.example.org:8765", "ws://127.0.0.1:8765/den"]

[networks.office]
prefix = "10.20.0.0/16"
address = "10.20.0.7"
export = false
routes = ["192.168.1.0/24", "fd00:1::/64"]
mtu = 1420

[[networks.office.allow]]
peer = "bob"
prefixes = ["192.168.2.0/24"]

[[networks.office.allow]]
peer = "${FP.match(/.{4}/g)!.join("-")}"

[networks.lab]
`,
    "config.toml",
  );
  assert.deepEqual(c.node, {
    name: "alice.laptop",
    listen: "[::]:7834",
    metrics: "off",
    log_format: "json",
    log_level: "debug",
  });
  assert.deepEqual(c.peers, [
    { name: "bob", address: "bob.example.org:7834", fingerprint: FP },
    { name: "carol", address: null, fingerprint: null },
  ]);
  assert.deepEqual(c.relay.urls, ["wss://relay.example.org:8765", "ws://127.0.0.1:8765/den"]);
  assert.deepEqual(c.networks, {
    office: {
      name: "office",
      prefix: "10.20.0.0/16",
      address: "10.20.0.7",
      export: false,
      routes: ["192.168.1.0/24", "fd00:1::/64"],
      mtu: 1420,
      allow: [
        { peer: "bob", prefixes: ["192.168.2.0/24"] },
        { peer: FP, prefixes: [] },
      ],
    },
    lab: {
      name: "lab",
      prefix: "100.64.0.0/10",
      address: "auto",
      export: true,
      routes: [],
      mtu: 1380,
      allow: [],
    },
  });
});

Deno.test("config: a wrong type names the line, what was found and what is allowed", () => {
  const err = invalid(`[node]\nname = "alice"\nlisten = 7834\n`);
  assert.deepEqual(err.issues, [{
    path: "node.listen",
    line: 3,
    found: "an integer 7834",
    allowed: "HOST:PORT with a port 1-65535",
  }]);
  assert.equal(
    err.message,
    "config.toml:3: node.listen: found an integer 7834, allowed: HOST:PORT with a port 1-65535",
  );
  assert.equal(err.code, "config_invalid");
  assert.equal(err.exit, 1);
  assert.ok(err instanceof DenError);
  assert.match(err.hint ?? "", /docs\/CONFIG\.md/);
});

Deno.test("config: types are described in words", () => {
  const found = (value: string) => onlyIssue(`${NODE}log_level = ${value}\n`).found;
  assert.equal(found('"loud"'), '"loud"');
  assert.equal(found("true"), "a boolean true");
  assert.equal(found("1.5"), "a float 1.5");
  assert.equal(found("[1, 2]"), "an array");
  assert.equal(found("[]"), "an empty array");
  assert.equal(found("{ a = 1 }"), "a table");
  assert.equal(found("1979-05-27"), "a date 1979-05-27");
  assert.equal(onlyIssue(`${NODE}[networks.a]\nmtu = 1380.0\n`).found, "a float 1380.0");
  assert.equal(onlyIssue(`${NODE}[networks.a]\nmtu = 9001\n`).found, "an integer 9001");
  assert.equal(onlyIssue(`${NODE}[networks.a]\nexport = "yes"\n`).found, 'a string "yes"');
  assert.equal(onlyIssue(`node = 1\n`).found, "an integer 1");
});

Deno.test("config: unknown keys in [node] and at the top level are named with their line", () => {
  const node = onlyIssue(`${NODE}\nlisen = "0.0.0.0:1"\n`);
  assert.deepEqual(node, {
    path: "node.lisen",
    line: 4,
    found: 'an unknown key "lisen"',
    allowed:
      'the keys of [node]: name, listen, metrics, log_format, log_level (did you mean "listen"?)',
  });
  const top = invalid(`colour = "blue"\n${NODE}[nodes]\n`);
  assert.equal(
    top.message,
    [
      'config.toml:1: colour: found an unknown key "colour", allowed: ' +
      "the tables [node], [[peers]], [relay], [networks.NAME] and [discovery]",
      'config.toml:4: nodes: found an unknown key "nodes", allowed: ' +
      'the tables [node], [[peers]], [relay], [networks.NAME] and [discovery] (did you mean "node"?)',
    ].join("\n"),
  );
  const misplaced = invalid(`listen = "0.0.0.0:1"\n${NODE}`).issues[0];
  assert.match(misplaced.allowed, /\(listen belongs under \[node\]\)$/);
  assert.equal(misplaced.line, 1);
  const deep = onlyIssue(`${NODE}[networks.a]\n[[networks.a.allow]]\npeer = "b"\nprefix = []\n`);
  assert.equal(deep.path, "networks.a.allow.0.prefix");
  assert.equal(deep.line, 6);
  assert.match(deep.allowed, /keys of \[\[networks\.a\.allow\]\]: peer, prefixes/);
});

Deno.test("config: bad HOST:PORT values, each on its line", () => {
  const err = invalid(
    `[node]
name = "alice"
listen = "localhost"
metrics = "1.2.3.4:99999"

[[peers]]
name = "bob"
address = "[::1]"
`,
  );
  assert.equal(
    err.message,
    [
      'config.toml:3: node.listen: found "localhost" (a string without a port), ' +
      "allowed: HOST:PORT with a port 1-65535",
      'config.toml:4: node.metrics: found "1.2.3.4:99999" (port 99999 is out of range), ' +
      'allowed: "off" or HOST:PORT with a port 1-65535',
      'config.toml:8: peers.0.address: found "[::1]" (a string without a port), ' +
      "allowed: HOST:PORT with a port 1-65535",
    ].join("\n"),
  );
});

Deno.test("config: bad CIDRs and host bits", () => {
  const err = invalid(`${NODE}
[networks.office]
prefix = "10.0.0.1/24"
routes = [
  "192.168.1.0/24",
  "192.168.2.0/33",
  "fd00::1/64",
]
`);
  assert.deepEqual(
    err.issues.map((i) => [i.line, i.path, i.found]),
    [
      [5, "networks.office.prefix", '"10.0.0.1/24" (host bits are set; the prefix is 10.0.0.0/24)'],
      [8, "networks.office.routes.1", '"192.168.2.0/33" (prefix length "33" is not a number 0-32)'],
      [9, "networks.office.routes.2", '"fd00::1/64" (host bits are set; the prefix is fd00::/64)'],
    ],
  );
  assert.match(err.issues[0].allowed, /host bits zero/);
});

Deno.test("config: a network address must be a usable address inside its prefix", () => {
  const found = (prefix: string, address: string) =>
    onlyIssue(`${NODE}[networks.a]\nprefix = "${prefix}"\naddress = "${address}"\n`).found;
  assert.equal(found("10.0.0.0/24", "10.0.1.1"), '"10.0.1.1" (not inside 10.0.0.0/24)');
  assert.equal(found("10.0.0.0/24", "10.0.0.0"), '"10.0.0.0" (the network address of 10.0.0.0/24)');
  assert.equal(
    found("10.0.0.0/24", "10.0.0.255"),
    '"10.0.0.255" (the broadcast address of 10.0.0.0/24)',
  );
  assert.equal(found("fd00::/64", "10.0.0.1"), '"10.0.0.1" (not inside fd00::/64)');
  assert.equal(found("fd00::/64", "fd00::x"), '"fd00::x" ("x" is not a group of 1-4 hex digits)');
  const ok = parseConfig(`${NODE}[networks.a]\nprefix = "fd00::/64"\naddress = "fd00::7"\n`, "c");
  assert.equal(ok.networks.a.address, "fd00::7");
  // With the default prefix.
  assert.equal(onlyIssue(`${NODE}[networks.a]\naddress = "10.0.0.1"\n`).line, 4);
  // A bad prefix is reported once, not again as "address not inside".
  assert.equal(
    invalid(`${NODE}[networks.a]\nprefix = "x"\naddress = "10.0.0.1"\n`).issues.length,
    1,
  );
});

Deno.test("config: duplicate peer names and fingerprints", () => {
  const err = invalid(`${NODE}
[[peers]]
name = "bob"
fingerprint = "${FP}"

[[peers]]
name = "bob"
fingerprint = "${FP.toUpperCase()}"
`);
  assert.equal(
    err.message,
    [
      'config.toml:9: peers.1.name: found "bob" (already used by peers.0.name on line 5), ' +
      "allowed: a name no other [[peers]] entry has",
      `config.toml:10: peers.1.fingerprint: found "${FP}" (already used by peers.0.fingerprint ` +
      "on line 6), allowed: a fingerprint no other [[peers]] entry has",
    ].join("\n"),
  );
});

Deno.test("config: peer names, fingerprints and missing keys", () => {
  const err = invalid(`${NODE}
[[peers]]
name = "-bob"

[[peers]]
address = "10.0.0.1:7834"
fingerprint = "${FP.slice(2)}"
`);
  assert.deepEqual(err.issues.map((i) => [i.line, i.path, i.found]), [
    [5, "peers.0.name", '"-bob" (starts with "-")'],
    [7, "peers.1.name", "nothing (the key is missing)"], // the [[peers]] header's line
    [9, "peers.1.fingerprint", `"${FP.slice(2)}" (50 base32 characters, not 52)`],
  ]);
  assert.equal(onlyIssue("[node]\n").path, "node.name");
  assert.equal(onlyIssue("[node]\n").line, 1);
  assert.equal(onlyIssue("[node]\nname = 'a b'\n").found, '"a b" (contains " ")');
  assert.equal(
    onlyIssue(`[node]\nname = "${"n".repeat(65)}"\n`).found.endsWith("(65 characters long)"),
    true,
  );
  assert.deepEqual(onlyIssue(""), {
    path: "node.name",
    found: "nothing (there is no [node] table)",
    allowed: "a name of 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
  });
  assert.equal(onlyIssue(`${NODE}[peers]\nname = "x"\n`).found, "a table");
});

Deno.test("config: network names must be usable in an interface name", () => {
  const err = invalid(`${NODE}
[networks.Office]
mtu = 1400

[networks.a-very-long-name1]

[networks.9lab]
`);
  assert.deepEqual(err.issues.map((i) => [i.line, i.path, i.found]), [
    [4, "networks.Office", 'the name "Office" (starts with "O")'],
    [7, "networks.a-very-long-name1", 'the name "a-very-long-name1" (17 characters long)'],
    [9, "networks.9lab", 'the name "9lab" (starts with "9")'],
  ]);
  assert.equal(
    err.issues[0].allowed,
    "a name of 1-15 lowercase letters, digits or '-', starting with a letter",
  );
  assert.equal(onlyIssue(`${NODE}[networks."my net"]\n`).path, 'networks."my net"');
});

Deno.test("config: allow rules", () => {
  const err = invalid(`${NODE}
[networks.a]
[[networks.a.allow]]
peer = "bob"
prefixes = "10.0.0.0/8"

[[networks.a.allow]]
peer = "bob"

[[networks.a.allow]]
prefixes = []
`);
  assert.deepEqual(err.issues.map((i) => [i.line, i.path, i.found]), [
    [7, "networks.a.allow.0.prefixes", 'a string "10.0.0.0/8"'],
    [10, "networks.a.allow.1.peer", '"bob" (already used by networks.a.allow.0.peer on line 6)'],
    [12, "networks.a.allow.2.peer", "nothing (the key is missing)"],
  ]);
  const bad = onlyIssue(`${NODE}[networks.a]\n[[networks.a.allow]]\npeer = "no way"\n`);
  assert.equal(bad.found, '"no way" (neither a peer name nor a fingerprint)');
});

Deno.test("config: relay URLs", () => {
  const err = invalid(`${NODE}[relay]\nurls = "wss://r.example"\n`);
  assert.equal(err.issues[0].found, 'a string "wss://r.example"');
  assert.match(err.issues[0].allowed, /^an array of ws:\/\/ or wss:\/\/ URLs/);
  const multi = invalid(
    `${NODE}[relay]\nurls = [\n  "wss://ok.example",\n  "https://r.example",\n  7,\n]\n`,
  );
  assert.deepEqual(multi.issues.map((i) => [i.line, i.path, i.found]), [
    [6, "relay.urls.1", '"https://r.example" (scheme https:// instead of ws:// or wss://)'],
    [7, "relay.urls.2", "an integer 7"],
  ]);
});

Deno.test("config: a TOML syntax error carries the parser's line and message", () => {
  const err = invalid(`[node]\nname = "alice"\nlisten = \n`);
  assert.equal(err.code, "config_invalid");
  assert.equal(err.issues.length, 1);
  assert.equal(err.issues[0].line, 3);
  assert.equal(err.issues[0].found, "invalid TOML (invalid value)");
  const [first, ...excerpt] = err.message.split("\n");
  assert.equal(first, "config.toml:3:10: invalid TOML: invalid value");
  assert.ok(excerpt.some((l) => l.includes("3:  listen =")), err.message);
  const dup = invalid(`[node]\nname = "a"\nname = "b"\n`);
  assert.equal(dup.issues[0].line, 3);
  assert.match(dup.message, /^config\.toml:3:\d+: invalid TOML: /);
});

Deno.test("config: every problem is reported at once, in file order", () => {
  const err = invalid(`[networks.x]
mtu = 100

[node]
name = "alice"
listen = 7834
log_format = "xml"

[[peers]]
name = "bob"
address = "localhost"
`);
  assert.deepEqual(err.issues.map((i) => `${i.line} ${i.path}`), [
    "2 networks.x.mtu",
    "6 node.listen",
    "7 node.log_format",
    "11 peers.0.address",
  ]);
  assert.equal(err.message.split("\n").length, 4);
  assert.match(
    err.message,
    /^config\.toml:2: networks\.x\.mtu: found an integer 100, allowed: an integer 1280-9000$/m,
  );
  assert.match(
    err.message,
    /^config\.toml:7: node\.log_format: found "xml", allowed: "text" or "json"$/m,
  );
});

Deno.test("config: a flood of problems is cut short in the message but kept in issues", () => {
  const lines = Array.from({ length: 80 }, (_, i) => `k${i} = 1`).join("\n");
  const err = invalid(`${NODE}${lines}\n`);
  assert.equal(err.issues.length, 80);
  const shown = err.message.split("\n");
  assert.equal(shown.length, 51);
  assert.equal(shown[50], "… and 30 more");
});

Deno.test("lineLocator: tables, arrays of tables, dotted and quoted keys, multi-line values", () => {
  const loc = lineLocator(`# comment
top = 1
a.b.c = "x"   # dotted
[node]
"quoted key" = 'v'
s = """
multi = [ "not a key"
"""
arr = [
  1,
  [2, 3],
  { x = 4 },
]
[[peers]]
name = "p0"
[[peers]]
name = "p1"
[peers.extra]
k = 1
[[net.a.allow]]
peer = "z"
[[net.a.allow]]
inline = { y.z = 1, w = [5] }
last = 'literal # not a comment'
`);
  const cases: [string[], number | undefined][] = [
    [["top"], 2],
    [["a"], 3],
    [["a", "b", "c"], 3],
    [["node"], 4],
    [["node", "quoted key"], 5],
    [["node", "s"], 6],
    [["node", "multi"], undefined],
    [["node", "arr"], 9],
    [["node", "arr", "0"], 10],
    [["node", "arr", "1"], 11],
    [["node", "arr", "1", "1"], 11],
    [["node", "arr", "2", "x"], 12],
    [["peers"], 14],
    [["peers", "0"], 14],
    [["peers", "0", "name"], 15],
    [["peers", "1"], 16],
    [["peers", "1", "name"], 17],
    [["peers", "1", "extra"], 18],
    [["peers", "1", "extra", "k"], 19],
    [["net", "a", "allow", "0", "peer"], 21],
    [["net", "a", "allow", "1"], 22],
    [["net", "a", "allow", "1", "inline", "y", "z"], 23],
    [["net", "a", "allow", "1", "inline", "w", "0"], 23],
    [["net", "a", "allow", "1", "last"], 24],
    [["missing"], undefined],
  ];
  for (const [path, line] of cases) assert.equal(loc(path), line, path.join("."));
});

Deno.test("lineLocator: never hangs or throws on garbage", () => {
  for (const src of ["[", "[[", "a = [", 'a = "', "a = '''", "= = =", "a.", "x = {", "]]]\n[a"]) {
    lineLocator(src)(["a"]);
  }
});

Deno.test("renderInitialConfig: round-trips through parseConfig", () => {
  const plain = renderInitialConfig({ name: "alice" });
  assert.deepEqual(parseConfig(plain, "config.toml"), parseConfig(NODE, "config.toml"));
  assert.match(plain, /^# den configuration/);
  for (const section of ["# [[peers]]", "# [relay]", "# [networks.office]"]) {
    assert.ok(plain.includes(section), section);
  }
  const full = renderInitialConfig({
    name: "srv-1",
    listen: "[::]:7000",
    metrics: "off",
    relays: ["wss://a.example:8765", "ws://10.0.0.1:8765"],
  });
  const c = parseConfig(full, "config.toml");
  assert.equal(c.node.name, "srv-1");
  assert.equal(c.node.listen, "[::]:7000");
  assert.equal(c.node.metrics, "off");
  assert.deepEqual(c.relay.urls, ["wss://a.example:8765", "ws://10.0.0.1:8765"]);
});

Deno.test("renderInitialConfig: the commented examples are valid when uncommented", () => {
  const text = renderInitialConfig({ name: "alice" });
  const uncommented = text.split("\n").map((l) => l.replace(/^# (?=\[|[a-z_]+ = )/, "")).join("\n");
  const c = parseConfig(uncommented, "config.toml");
  assert.equal(c.peers.length, 1);
  assert.equal(c.relay.urls.length, 1);
  assert.deepEqual(c.networks.office.allow, [{ peer: "server", prefixes: ["10.20.0.0/16"] }]);
  assert.equal(c.networks.office.mtu, DEFAULTS.networks.mtu);
});

Deno.test("renderInitialConfig: hostile values stay valid TOML; validation reports them", () => {
  const text = renderInitialConfig({ name: 'x"\n[evil]\nk = "\ud800', listen: "a\\b" });
  const err = invalid(text);
  assert.deepEqual(err.issues.map((i) => i.path), ["node.name", "node.listen"]);
});

Deno.test("writeConfigFile and loadConfig", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sub/config.toml`;
    await assert.rejects(loadConfig(path), (e: unknown) => {
      assert.ok(e instanceof DenError);
      assert.equal(e.code, "no_config");
      assert.equal(e.exit, 1);
      assert.match(e.message, /no config file at .*sub\/config\.toml/);
      assert.match(e.hint ?? "", /den init --name NAME/);
      return true;
    });
    await writeConfigFile(path, renderInitialConfig({ name: "alice" }));
    await writeConfigFile(path, `${NODE}listen = "127.0.0.1:7000"\n`); // replaces
    const { config, source } = await loadConfig(path);
    assert.equal(config.node.listen, "127.0.0.1:7000");
    assert.equal(source, `${NODE}listen = "127.0.0.1:7000"\n`);
    assert.equal((await Deno.stat(path)).mode! & 0o777 & ~0o022, 0o644 & ~0o022);
    assert.deepEqual([...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name), ["config.toml"]);

    await Deno.writeTextFile(path, `${NODE}listen = 1\n`);
    await assert.rejects(loadConfig(path), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.message.split(":")[0], path, "messages name the file that was read");
      assert.match(e.message, /:3: node\.listen: found an integer 1/);
      return true;
    });

    await Deno.writeFile(path, new Uint8Array(MAX_CONFIG_BYTES + 1).fill(0x23));
    await assert.rejects(loadConfig(path), /larger than 1048576 bytes/);

    await Deno.writeFile(path, new Uint8Array([0x23, 0xff, 0x0a]));
    await assert.rejects(loadConfig(path), /not UTF-8/);

    await assert.rejects(loadConfig(dir), /not a regular file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("docs/CONFIG.md: the example parses and the error example is what den prints", async () => {
  const doc = await Deno.readTextFile(new URL("../../docs/CONFIG.md", import.meta.url));
  const blocks = [...doc.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => [m[1], m[2]]);
  const toml = blocks.filter(([lang]) => lang === "toml").map(([, body]) => body);
  assert.equal(toml.length, 2);
  const example = parseConfig(toml[0], "config.toml");
  assert.equal(example.peers[0].fingerprint?.length, 52);
  assert.equal(example.networks.office.mtu, DEFAULTS.networks.mtu);
  const shown = blocks[blocks.findIndex(([, body]) => body === toml[1]) + 1][1];
  assert.equal(invalid(toml[1]).message, shown.trimEnd());
  for (const v of [DEFAULTS.node.listen, DEFAULTS.node.metrics, DEFAULTS.networks.prefix]) {
    assert.ok(doc.includes(`\`"${v}"\``), `docs name the default ${v}`);
  }
});
