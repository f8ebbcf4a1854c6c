import assert from "node:assert/strict";
import { addPeerToConfig, removePeerFromConfig } from "../../src/config/edit.ts";
import { parseConfig } from "../../src/config/load.ts";
import { ConfigError, type PeerConfig } from "../../src/config/schema.ts";
import { renderInitialConfig } from "../../src/config/write.ts";
import { DenError } from "../../src/errors.ts";

const FP = "zzyyxkiso5x74p6atv4gscedewvmgvf34x6ela3w2cbceibhrh5q";
const FP2 = "f476wb6tiiq7db37searngbb7w7pa6ezcgxjywav7njysunq7l2q";
const GROUPED = FP.toUpperCase().match(/.{4}/g)!.join(" ");

const peers = (text: string): PeerConfig[] => parseConfig(text, "config.toml").peers;

/** Every line of `original` is still in `edited`, in the same order. */
function keepsLines(original: string, edited: string, except: string[] = []): void {
  const out = edited.split("\n");
  let at = 0;
  for (const line of original.split("\n")) {
    if (except.includes(line)) continue;
    const found = out.indexOf(line, at);
    assert.ok(found >= 0, `line lost or moved: ${JSON.stringify(line)}\n--- result:\n${edited}`);
    at = found + 1;
  }
}

const SEVERAL = `# my den
[node]
name = "alice" # this node

# Peers I work with
[[peers]]
name = "bob"
address = "10.0.0.2:7834" # bob's desktop
# bob rotates keys yearly
fingerprint = "${GROUPED}"

[[peers]]
  name = 'carol'   # indented, literal string
  address = "carol.example.org:7834"

# Relays forward what cannot go direct
[relay]
urls = [
  "wss://relay.example.org:8765", # main
]

[networks.office]
prefix = "10.20.0.0/16"

[[networks.office.allow]]
peer = "bob"
prefixes = ["10.20.0.0/16"]
`;

Deno.test("config edit: add to a config with no [[peers]] yet appends at the end", () => {
  const init = renderInitialConfig({ name: "alice" });
  assert.deepEqual(peers(init), []);
  const text = addPeerToConfig(init, { name: "bob", address: "203.0.113.7:7834" });
  assert.ok(text.startsWith(init), "the original text is untouched");
  assert.equal(
    text.slice(init.length),
    '\n[[peers]]\nname = "bob"\naddress = "203.0.113.7:7834"\n',
  );
  assert.deepEqual(peers(text), [{ name: "bob", address: "203.0.113.7:7834", fingerprint: null }]);
  // The template's commented "# [[peers]]" example is a comment, not a table.
  assert.match(text, /^# \[\[peers\]\]$/m);
});

Deno.test("config edit: add to a minimal file without a final newline", () => {
  const text = addPeerToConfig('[node]\nname = "alice"', { name: "bob" });
  assert.equal(text, '[node]\nname = "alice"\n\n[[peers]]\nname = "bob"\n');
  assert.deepEqual(peers(text), [{ name: "bob", address: null, fingerprint: null }]);
});

Deno.test("config edit: add among several peers goes after the last [[peers]] table", () => {
  const text = addPeerToConfig(SEVERAL, { name: "dave", fingerprint: FP2.toUpperCase() });
  keepsLines(SEVERAL, text);
  assert.deepEqual(peers(text).map((p) => p.name), ["bob", "carol", "dave"]);
  assert.equal(peers(text)[2].fingerprint, FP2);
  assert.ok(
    text.includes(
      `  address = "carol.example.org:7834"\n\n[[peers]]\nname = "dave"\n` +
        `fingerprint = "${FP2}"\n\n# Relays forward what cannot go direct\n[relay]\n`,
    ),
    text,
  );
  const before = parseConfig(SEVERAL, "config.toml");
  const after = parseConfig(text, "config.toml");
  assert.deepEqual({ ...after, peers: after.peers.slice(0, 2) }, before);
});

Deno.test("config edit: add of an existing name updates address and fingerprint in place", () => {
  const text = addPeerToConfig(SEVERAL, { name: "bob", address: "[fd00::2]:7834" });
  assert.equal(
    text,
    SEVERAL.replace('address = "10.0.0.2:7834" # bob', 'address = "[fd00::2]:7834" # bob'),
  );
  // The pin is kept when no fingerprint is given.
  assert.deepEqual(peers(text)[0], { name: "bob", address: "[fd00::2]:7834", fingerprint: FP });

  const pinned = addPeerToConfig(SEVERAL, { name: "bob", fingerprint: FP2 });
  assert.equal(pinned, SEVERAL.replace(`"${GROUPED}"`, `"${FP2}"`));
  assert.equal(peers(pinned)[0].fingerprint, FP2);
});

Deno.test("config edit: a key the existing entry lacks is added after its last key, indented alike", () => {
  const text = addPeerToConfig(SEVERAL, {
    name: "carol",
    address: "10.0.0.3:7834",
    fingerprint: FP2,
  });
  keepsLines(SEVERAL, text, ['  address = "carol.example.org:7834"']);
  assert.ok(
    text.includes(
      `  name = 'carol'   # indented, literal string\n  address = "10.0.0.3:7834"\n` +
        `  fingerprint = "${FP2}"\n\n# Relays`,
    ),
    text,
  );
  assert.deepEqual(peers(text)[1], { name: "carol", address: "10.0.0.3:7834", fingerprint: FP2 });
});

Deno.test("config edit: add with nothing to change returns the text unchanged", () => {
  assert.equal(addPeerToConfig(SEVERAL, { name: "carol" }), SEVERAL);
});

Deno.test("config edit: quoted keys, spaced headers and multi-line values", () => {
  const source = `[node]
name = "alice"

[[ peers ]]
"name" = "bob"
'address' = """
10.0.0.2:7834"""

[relay]
urls = ["wss://relay.example.org:8765"]
`;
  assert.equal(peers(source)[0].address, "10.0.0.2:7834");
  const text = addPeerToConfig(source, { name: "bob", address: "10.0.0.9:7834" });
  assert.equal(
    text,
    source.replace('"""\n10.0.0.2:7834"""', '"10.0.0.9:7834"'),
  );
  const removed = removePeerFromConfig(source, "bob");
  assert.equal(
    removed.text,
    '[node]\nname = "alice"\n\n[relay]\nurls = ["wss://relay.example.org:8765"]\n',
  );
});

Deno.test("config edit: values that look like tables inside strings and arrays are not headers", () => {
  const source = `[node]
name = "alice"

[[peers]]
name = "bob"
address = "10.0.0.2:7834" # [[peers]] in a comment

[networks.office]
routes = [
  "192.168.1.0/24",
  # [[peers]]
]
`;
  const text = addPeerToConfig(source, { name: "carol" });
  assert.deepEqual(peers(text).map((p) => p.name), ["bob", "carol"]);
  assert.ok(text.includes('# [[peers]] in a comment\n\n[[peers]]\nname = "carol"\n\n[networks'));
  assert.deepEqual(parseConfig(text, "c").networks, parseConfig(source, "c").networks);
});

Deno.test("config edit: remove a peer in the middle, keeping the next table's comments", () => {
  const { text, removed } = removePeerFromConfig(SEVERAL, "carol");
  assert.equal(removed, true);
  assert.equal(
    text,
    SEVERAL.replace(
      `[[peers]]\n  name = 'carol'   # indented, literal string\n` +
        `  address = "carol.example.org:7834"\n\n`,
      "",
    ),
  );
  assert.deepEqual(peers(text).map((p) => p.name), ["bob"]);
  assert.match(text, /# Relays forward what cannot go direct\n\[relay\]/);
});

Deno.test("config edit: remove the first peer takes its inner comments, keeps the one above", () => {
  const { text } = removePeerFromConfig(SEVERAL, "bob");
  assert.ok(!text.includes("bob rotates keys"));
  assert.ok(!text.includes("bob's desktop"));
  assert.ok(text.includes("# Peers I work with\n[[peers]]\n  name = 'carol'"), text);
  assert.deepEqual(peers(text).map((p) => p.name), ["carol"]);
  // [[networks.office.allow]] still names bob: that is allowed, and it is untouched.
  assert.match(text, /peer = "bob"/);
});

Deno.test("config edit: remove the last peer at the end of the file leaves no trailing blanks", () => {
  const source = '[node]\nname = "alice"\n\n[[peers]]\nname = "bob"\n\n[[peers]]\nname = "carol"\n';
  assert.equal(
    removePeerFromConfig(source, "carol").text,
    '[node]\nname = "alice"\n\n[[peers]]\nname = "bob"\n',
  );
  // Without a final newline, and with a comment below its last key.
  const noEol = '[node]\nname = "alice"\n\n[[peers]]\nname = "bob"\n# old address: 1.2.3.4';
  assert.equal(removePeerFromConfig(noEol, "bob").text, '[node]\nname = "alice"\n');
  // The only peer, between two tables.
  const only = '[node]\nname = "alice"\n\n[[peers]]\nname = "bob"\n\n[relay]\nurls = []\n';
  assert.equal(
    removePeerFromConfig(only, "bob").text,
    '[node]\nname = "alice"\n\n[relay]\nurls = []\n',
  );
});

Deno.test("config edit: a comment directly below the last key goes with the peer", () => {
  const source = '[node]\nname = "a"\n\n[[peers]]\nname = "bob"\n# bob is on leave\n\n' +
    "# relays\n[relay]\n";
  assert.equal(
    removePeerFromConfig(source, "bob").text,
    '[node]\nname = "a"\n\n# relays\n[relay]\n',
  );
  // But a comment that leads straight into the next header belongs to that table.
  const touching = '[node]\nname = "a"\n\n[[peers]]\nname = "bob"\n# relays\n[relay]\n';
  assert.equal(
    removePeerFromConfig(touching, "bob").text,
    '[node]\nname = "a"\n\n# relays\n[relay]\n',
  );
});

Deno.test("config edit: remove of an unknown name changes nothing", () => {
  assert.deepEqual(removePeerFromConfig(SEVERAL, "zed"), { text: SEVERAL, removed: false });
  assert.deepEqual(removePeerFromConfig(SEVERAL, "Bob"), { text: SEVERAL, removed: false });
});

Deno.test("config edit: add then remove gives back the original", () => {
  for (const source of [SEVERAL, renderInitialConfig({ name: "alice" })]) {
    const added = addPeerToConfig(source, { name: "zed", address: "10.9.9.9:7834" });
    assert.equal(removePeerFromConfig(added, "zed").text, source);
  }
});

Deno.test("config edit: CRLF files stay CRLF", () => {
  const crlf = SEVERAL.replaceAll("\n", "\r\n");
  const checks = [
    addPeerToConfig(crlf, { name: "dave", address: "10.0.0.4:7834" }),
    addPeerToConfig(crlf, { name: "carol", fingerprint: FP2 }),
    addPeerToConfig(crlf, { name: "bob", address: "10.0.0.5:7834" }),
    removePeerFromConfig(crlf, "carol").text,
    removePeerFromConfig(crlf, "bob").text,
  ];
  for (const text of checks) {
    assert.ok(!/[^\r]\n/.test(text), `a bare LF in:\n${JSON.stringify(text)}`);
    const lf = text.replaceAll("\r\n", "\n");
    assert.deepEqual(parseConfig(text, "c"), parseConfig(lf, "c"));
  }
  assert.deepEqual(peers(checks[0]).map((p) => p.name), ["bob", "carol", "dave"]);
  assert.equal(peers(checks[1])[1].fingerprint, FP2);
  assert.equal(peers(checks[2])[0].address, "10.0.0.5:7834");
  assert.deepEqual(peers(checks[3]).map((p) => p.name), ["bob"]);
  assert.deepEqual(peers(checks[4]).map((p) => p.name), ["carol"]);
  assert.equal(
    addPeerToConfig('[node]\r\nname = "a"\r\n', { name: "b" }),
    '[node]\r\nname = "a"\r\n\r\n[[peers]]\r\nname = "b"\r\n',
  );
  assert.equal(
    removePeerFromConfig(addPeerToConfig(crlf, { name: "zed" }), "zed").text,
    crlf,
  );
});

/** The ConfigError `fn` throws; fails when it returns. */
function configError(fn: () => unknown): ConfigError {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail(`returned instead of throwing: ${JSON.stringify(result)}`);
}

Deno.test("config edit: an invalid peer throws the ConfigError and returns nothing", () => {
  let err = configError(() => addPeerToConfig(SEVERAL, { name: "dave", address: "nope" }));
  assert.equal(err.code, "config_invalid");
  assert.match(err.message, /peers\.2\.address: found "nope" \(a string without a port\)/);
  err = configError(() => addPeerToConfig(SEVERAL, { name: "bob", address: "10.0.0.1:99999" }));
  assert.match(err.message, /peers\.0\.address: .*port 99999 is out of range/);
  err = configError(() => addPeerToConfig(SEVERAL, { name: "bad name" }));
  assert.match(err.message, /peers\.2\.name: found "bad name" \(contains " "\)/);
  err = configError(() => addPeerToConfig(SEVERAL, { name: "dave", fingerprint: "abc" }));
  assert.match(err.message, /peers\.2\.fingerprint/);
  err = configError(() => addPeerToConfig(SEVERAL, { name: "dave", fingerprint: FP }));
  assert.match(err.message, /already used by peers\.0\.fingerprint/);
  err = configError(() => addPeerToConfig(SEVERAL, { name: "dave", address: "" }));
  assert.match(err.message, /peers\.2\.address/);
});

Deno.test("config edit: values cannot inject TOML", () => {
  const err = configError(() =>
    addPeerToConfig(SEVERAL, { name: 'x"\n[node]\nname = "evil', address: "1.2.3.4:1\x7f" })
  );
  assert.match(err.message, /peers\.2\.name/);
  assert.doesNotMatch(err.message, /invalid TOML/);
  const lone = configError(() => addPeerToConfig(SEVERAL, { name: "a\ud800" }));
  assert.match(lone.message, /peers\.2\.name/);
});

Deno.test("config edit: an invalid source is refused before any edit", () => {
  const bad = '[node]\nname = "alice"\nlisten = 7834\n';
  assert.throws(() => addPeerToConfig(bad, { name: "bob" }), ConfigError);
  assert.throws(() => removePeerFromConfig(bad, "bob"), ConfigError);
  assert.throws(() => addPeerToConfig("[node\n", { name: "bob" }), /invalid TOML/);
});

Deno.test("config edit: peers written as an inline array cannot be edited", () => {
  const inline = '[node]\nname = "alice"\n\npeers = [{ name = "bob" }]\n'.replace(
    '[node]\nname = "alice"\n\n',
    "",
  ) + '[node]\nname = "alice"\n';
  assert.deepEqual(peers(inline).map((p) => p.name), ["bob"]);
  for (
    const fn of [
      () => addPeerToConfig(inline, { name: "carol" }),
      () => removePeerFromConfig(inline, "bob"),
    ]
  ) {
    assert.throws(fn, (e: unknown) => {
      assert.ok(e instanceof DenError);
      assert.equal(e.code, "config_not_editable");
      assert.match(e.hint ?? "", /\[\[peers\]\]/);
      return true;
    });
  }
});

Deno.test("config edit: the file label names the file in errors", () => {
  const err = configError(() =>
    addPeerToConfig(SEVERAL, { name: "dave", address: "nope" }, "/home/al/.config/den/config.toml")
  );
  assert.match(err.message, /^\/home\/al\/\.config\/den\/config\.toml:\d+: peers\.2\.address/);
});

Deno.test("config edit: a long sequence of adds, updates and removes stays consistent", () => {
  let seed = 7;
  const next = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (
    const start of [SEVERAL, SEVERAL.replaceAll("\n", "\r\n"), renderInitialConfig({ name: "a" })]
  ) {
    let text = start;
    const model = new Map(peers(start).map((p) => [p.name, p]));
    for (let step = 0; step < 200; step++) {
      const name = `p${next(6)}`;
      if (next(3) === 0) {
        const { removed, text: out } = removePeerFromConfig(text, name);
        assert.equal(removed, model.delete(name));
        text = out;
      } else {
        const address = next(2) === 0 ? `10.0.${next(256)}.${next(256)}:7834` : undefined;
        text = addPeerToConfig(text, { name, address });
        const old = model.get(name);
        model.set(name, {
          name,
          address: address ?? old?.address ?? null,
          fingerprint: old?.fingerprint ?? null,
        });
      }
      const got = peers(text);
      assert.deepEqual(new Map(got.map((p) => [p.name, p])), model, `step ${step}`);
    }
    const crlf = start.includes("\r\n");
    assert.equal(/[^\r]\n/.test(text), !crlf && text.includes("\n"));
    for (const name of [...model.keys()]) {
      if (!peers(start).some((p) => p.name === name)) text = removePeerFromConfig(text, name).text;
    }
    // Only the peers of the original remain, and every original comment is still there.
    for (const line of start.split(/\r?\n/)) {
      if (line.trimStart().startsWith("#")) assert.ok(text.includes(line), line);
    }
  }
});
