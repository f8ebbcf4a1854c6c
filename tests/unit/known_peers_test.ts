import assert from "node:assert/strict";
import { join } from "node:path";
import { toBase32, utf8 } from "../../src/crypto/encoding.ts";
import { sha256 } from "../../src/crypto/kdf.ts";
import { DenError } from "../../src/errors.ts";
import {
  type KnownPeer,
  KnownPeers,
  MAX_KNOWN_PEERS,
  MAX_KNOWN_PEERS_BYTES,
} from "../../src/trust/known_peers.ts";

const fp = (seed: string) => toBase32(sha256(utf8(seed)));
const A = fp("a");
const B = fp("b");
const C = fp("c");
const T1 = new Date("2025-01-02T03:04:05.678Z");
const T2 = new Date("2025-03-04T05:06:07Z");
const posix = Deno.build.os !== "windows";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "den-known-peers-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The DenError loading `text` as known_peers.toml raises. */
async function loadError(text: string | Uint8Array): Promise<DenError> {
  let caught: unknown;
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers.toml");
    if (typeof text === "string") await Deno.writeTextFile(path, text);
    else await Deno.writeFile(path, text);
    try {
      await KnownPeers.load(path);
    } catch (e) {
      caught = e;
    }
  });
  assert.ok(caught instanceof DenError, `expected a DenError, got ${caught}`);
  return caught;
}

/** Asserts `text` is known_peers_corrupt, exit 5, naming the file (and `line` when given). */
async function assertCorrupt(text: string | Uint8Array, line?: number, what?: RegExp) {
  const err = await loadError(text);
  assert.equal(err.code, "known_peers_corrupt", err.message);
  assert.equal(err.exit, 5);
  assert.match(err.message, /known_peers\.toml/);
  if (line !== undefined) assert.match(err.message, new RegExp(`known_peers\\.toml:${line}: `));
  if (what) assert.match(err.message, what);
  assert.match(err.hint ?? "", /fix or remove/);
  return err;
}

function entry(fingerprint: string, name: string, first = "2025-01-02T03:04:05Z", last = first) {
  return `[[peers]]\nfingerprint = "${fingerprint}"\nname = "${name}"\n` +
    `first_seen = "${first}"\nlast_seen = "${last}"\n`;
}

Deno.test("known_peers: a missing file is an empty store", async () => {
  await withTempDir(async (dir) => {
    const store = await KnownPeers.load(join(dir, "known_peers.toml"));
    assert.deepEqual(store.list(), []);
    assert.equal(store.byName("a"), undefined);
    assert.equal(store.byFingerprint(A), undefined);
  });
});

Deno.test("known_peers: save/load round trip, mode 0600, atomic, seconds precision", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "sub", "known_peers.toml");
    const store = KnownPeers.empty(path);
    store.remember("alice", A, T1);
    store.remember("bob.laptop", B, T1);
    store.remember("alice", A, T2);
    await store.save();
    if (posix) assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const loaded = await KnownPeers.load(path);
    const expected: KnownPeer[] = [
      {
        fingerprint: A,
        name: "alice",
        firstSeen: "2025-01-02T03:04:05Z",
        lastSeen: "2025-03-04T05:06:07Z",
      },
      {
        fingerprint: B,
        name: "bob.laptop",
        firstSeen: "2025-01-02T03:04:05Z",
        lastSeen: "2025-01-02T03:04:05Z",
      },
    ];
    assert.deepEqual(loaded.list(), expected);
    assert.deepEqual(loaded.byName("bob.laptop"), expected[1]);
    assert.deepEqual(loaded.byFingerprint(A), expected[0]);
    // Saving again gives the same bytes, and no temp files are left behind.
    const before = await Deno.readTextFile(path);
    await loaded.save();
    assert.equal(await Deno.readTextFile(path), before);
    assert.equal(before, loaded.render());
    const names = [];
    for await (const e of Deno.readDir(join(dir, "sub"))) names.push(e.name);
    assert.deepEqual(names, ["known_peers.toml"]);
    // A file with looser permissions is replaced by a 0600 one.
    if (posix) {
      await Deno.chmod(path, 0o644);
      await loaded.save();
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    }
  });
});

Deno.test("known_peers: the file is the documented format", () => {
  const store = KnownPeers.empty("/x/known_peers.toml");
  store.remember("bob", A, T1);
  const text = store.render();
  assert.ok(text.startsWith("# den known peers"));
  assert.ok(text.endsWith(`\n\n${entry(A, "bob")}`), text);
});

Deno.test("known_peers: lookups return copies", () => {
  const store = KnownPeers.empty("/x/known_peers.toml");
  store.remember("bob", A, T1);
  store.byName("bob")!.name = "mallory";
  store.list()[0].fingerprint = B;
  assert.equal(store.byName("bob")?.fingerprint, A);
  assert.equal(store.byFingerprint(B), undefined);
});

Deno.test("known_peers: remember never replaces a name's fingerprint; forget then remember does", () => {
  const store = KnownPeers.empty("/x/known_peers.toml");
  store.remember("bob", A, T1);
  assert.throws(() => store.remember("bob", B, T2), (e: unknown) => {
    assert.ok(e instanceof DenError);
    assert.equal(e.code, "identity_changed");
    assert.equal(e.exit, 5);
    assert.ok(e.message.includes(A) && e.message.includes(B), e.message);
    assert.match(e.hint ?? "", /den trust reset bob/);
    return true;
  });
  assert.equal(store.byName("bob")?.fingerprint, A, "unchanged");
  assert.equal(store.byFingerprint(B), undefined);
  const gone = store.forget("bob");
  assert.equal(gone?.fingerprint, A);
  assert.equal(store.forget("bob"), undefined);
  assert.equal(store.byFingerprint(A), undefined);
  store.remember("bob", B, T2);
  assert.equal(store.byName("bob")?.fingerprint, B);
  assert.equal(store.byName("bob")?.firstSeen, "2025-03-04T05:06:07Z");
});

Deno.test("known_peers: a known fingerprint under a new name is renamed, keeping first_seen", () => {
  const store = KnownPeers.empty("/x/known_peers.toml");
  store.remember("bob", A, T1);
  store.remember("carol", B, T1);
  store.remember("robert", A, T2);
  assert.equal(store.byName("bob"), undefined);
  assert.deepEqual(store.byName("robert"), {
    fingerprint: A,
    name: "robert",
    firstSeen: "2025-01-02T03:04:05Z",
    lastSeen: "2025-03-04T05:06:07Z",
  });
  assert.deepEqual(store.list().map((p) => p.name), ["robert", "carol"], "order kept");
  // A rename onto a name bound to another key is refused.
  assert.throws(() => store.remember("carol", A, T2), /carol is known as/);
  assert.equal(store.byName("robert")?.fingerprint, A);
});

Deno.test("known_peers: remember validates its arguments", () => {
  const store = KnownPeers.empty("/x/known_peers.toml");
  for (const name of ["", "-bob", "bob smith", "a".repeat(65), 'x"\n[[peers]]']) {
    assert.throws(() => store.remember(name, A, T1), { code: "bad_peer_name" }, name);
  }
  for (const f of ["", A.toUpperCase(), A.slice(0, 51), `${A.slice(0, 51)}b`, `${A} `]) {
    assert.throws(() => store.remember("bob", f, T1), { code: "bad_fingerprint" }, f);
  }
  assert.throws(() => store.remember("bob", A, new Date(NaN)), RangeError);
  assert.throws(() => store.remember("bob", A, new Date(8.64e15)), RangeError);
  assert.deepEqual(store.list(), []);
  store.remember("a".repeat(64), A, T1);
});

Deno.test("known_peers: remember refuses a peer beyond the cap", () => {
  const store = KnownPeers.empty("/x/known_peers.toml");
  for (let i = 0; i < MAX_KNOWN_PEERS; i++) store.remember(`p${i}`, fp(`k${i}`), T1);
  assert.throws(() => store.remember("one-more", C, T1), { code: "known_peers_full" });
  store.remember("p0", fp("k0"), T2); // updates still work
  // The largest possible file still loads: the cap and the byte limit agree.
  assert.ok(utf8(store.render()).length < MAX_KNOWN_PEERS_BYTES);
});

Deno.test("known_peers: an empty or comment-only file is an empty store", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers.toml");
    for (const text of ["", "# nothing yet\n", "\n\n"]) {
      await Deno.writeTextFile(path, text);
      assert.deepEqual((await KnownPeers.load(path)).list(), []);
    }
  });
});

Deno.test("known_peers: reads fractions of a second and inline arrays", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers.toml");
    await Deno.writeTextFile(path, entry(A, "bob", "2025-01-02T03:04:05.123456789Z"));
    assert.equal(
      (await KnownPeers.load(path)).byName("bob")?.firstSeen,
      "2025-01-02T03:04:05.123456789Z",
    );
    await Deno.writeTextFile(
      path,
      `peers = [{ fingerprint = "${A}", name = "bob", first_seen = "2025-01-02T03:04:05Z", ` +
        `last_seen = "2025-01-02T03:04:05Z" }]\n`,
    );
    assert.equal((await KnownPeers.load(path)).byName("bob")?.fingerprint, A);
  });
});

Deno.test("known_peers: invalid TOML is corrupt, naming file and line", async () => {
  await assertCorrupt(`${entry(A, "bob")}\n[[peers]]\nfingerprint = \n`, 8, /invalid TOML/);
  await assertCorrupt('[[peers]]\nname = "unterminated\n', 2, /invalid TOML/);
});

Deno.test("known_peers: wrong types and values are corrupt, naming file, line and key", async () => {
  const good = entry(A, "bob");
  await assertCorrupt(
    good.replace('name = "bob"', "name = 42"),
    3,
    /peers\.0\.name: found an integer 42/,
  );
  await assertCorrupt(
    good.replace('first_seen = "2025-01-02T03:04:05Z"', "first_seen = 2025-01-02T03:04:05Z"),
    4,
    /peers\.0\.first_seen: found a date/,
  );
  await assertCorrupt(good.replace(A, A.toUpperCase()), 2, /not written canonically/);
  await assertCorrupt(good.replace(A, A.slice(0, 50)), 2, /not a fingerprint/);
  await assertCorrupt(good.replace('"bob"', '"bob smith"'), 3, /not a peer name/);
  await assertCorrupt(good.replace('"bob"', '""'), 3, /not a peer name/);
  for (
    const t of [
      "2025-02-30T00:00:00Z",
      "2025-01-02T24:00:00Z",
      "2025-01-02 03:04:05Z",
      "2025-01-02T03:04:05+01:00",
      "2025-01-02T03:04:60Z",
      "yesterday",
    ]
  ) {
    await assertCorrupt(
      good.replace('last_seen = "2025-01-02T03:04:05Z"', `last_seen = "${t}"`),
      5,
      /peers\.0\.last_seen: .* is not a quoted RFC 3339 UTC time/,
    );
  }
  await assertCorrupt(good.replace(/last_seen = .*\n/, ""), 1, /peers\.0\.last_seen: missing/);
  await assertCorrupt(`${good}address = "1.2.3.4:7834"\n`, 6, /peers\.0\.address: unknown key/);
  await assertCorrupt(`version = 1\n${good}`, 1, /unknown key "version"/);
  await assertCorrupt('peers = "bob"\n', 1, /expected \[\[peers\]\] entries/);
  await assertCorrupt("peers = [1]\n", 1, /peers\.0: found an integer 1/);
  await assertCorrupt(new Uint8Array([0x70, 0x65, 0xff, 0x0a]), undefined, /not UTF-8/);
});

Deno.test("known_peers: every problem is listed, not only the first", async () => {
  const err = await assertCorrupt(
    entry(A, "bob").replace('"bob"', "1") + "\n" + entry(B, "carol").replace(B, "nope"),
  );
  assert.match(err.message, /known_peers\.toml:3: peers\.0\.name/);
  assert.match(err.message, /known_peers\.toml:8: peers\.1\.fingerprint/);
});

Deno.test("known_peers: a duplicate fingerprint is corrupt", async () => {
  await assertCorrupt(
    `${entry(A, "bob")}\n${entry(A, "carol")}`,
    8,
    new RegExp(`peers\\.1\\.fingerprint: "${A}" is already listed by peers\\.0 on line 1`),
  );
});

Deno.test("known_peers: a name with two fingerprints is corrupt", async () => {
  await assertCorrupt(
    `${entry(A, "bob")}\n${entry(B, "bob")}`,
    9,
    new RegExp(
      `peers\\.1\\.name: "bob" is already listed by peers\\.0 on line 1 with fingerprint ${A}`,
    ),
  );
});

Deno.test("known_peers: an oversized file is corrupt and refused unread", async () => {
  const big = `${entry(A, "bob")}${"#".repeat(MAX_KNOWN_PEERS_BYTES)}\n`;
  await assertCorrupt(big, undefined, /larger than 1048576 bytes/);
});

Deno.test("known_peers: more entries than the cap is corrupt", async () => {
  const parts: string[] = [];
  for (let i = 0; i <= MAX_KNOWN_PEERS; i++) {
    parts.push(
      `[[peers]]\nfingerprint="${
        fp(`k${i}`)
      }"\nname="p${i}"\nfirst_seen="2025-01-02T03:04:05Z"\nlast_seen="2025-01-02T03:04:05Z"\n`,
    );
  }
  const text = parts.join("");
  assert.ok(text.length <= MAX_KNOWN_PEERS_BYTES);
  await assertCorrupt(text, 1, /4097 \[\[peers\]\] entries, more than 4096/);
});

Deno.test("known_peers: a directory in its place is unreadable (exit 1)", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers.toml");
    await Deno.mkdir(path);
    await assert.rejects(() => KnownPeers.load(path), {
      code: "known_peers_unreadable",
      exit: 1,
    });
  });
});
