import assert from "node:assert/strict";
import { join } from "node:path";
import { fromBase64, toBase64, utf8 } from "../../src/crypto/encoding.ts";
import { ARGON2_DEFAULT, type Argon2Params, sha256 } from "../../src/crypto/kdf.ts";
import { DenError } from "../../src/errors.ts";
import { fingerprint } from "../../src/identity/fingerprint.ts";
import { generateIdentity, type Identity, wipeIdentity } from "../../src/identity/keys.ts";
import { readKeystore, readKeystoreHeader, writeKeystore } from "../../src/identity/keystore.ts";
import { HiddenLine } from "../../src/identity/line_editor.ts";
import { obtainPassphrase } from "../../src/identity/passphrase.ts";
import {
  checkPrivateDir,
  checkPrivateFile,
  ensurePrivateDir,
} from "../../src/identity/permissions.ts";
import { readPublicFile, writePublicFile } from "../../src/identity/pubfile.ts";

const FAST: Argon2Params = { memoryKiB: 8192, iterations: 1, parallelism: 1 };
const PASS = "correct horse battery";
const posix = Deno.build.os !== "windows";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "den-keystore-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function modeOf(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

/** A getPassphrase that records how often it was asked. */
function passphrase(value: string) {
  const fn = () => {
    fn.calls++;
    return Promise.resolve(value);
  };
  fn.calls = 0;
  return fn;
}

function denError(code: string, exit: number, mentions: string[] = []) {
  return (err: unknown) => {
    assert.ok(err instanceof DenError, `expected DenError, got ${err}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.exit, exit);
    for (const m of mentions) {
      assert.ok(
        err.message.includes(m) || (err.hint ?? "").includes(m),
        `"${m}" not in: ${err.message} / ${err.hint}`,
      );
    }
    return true;
  };
}

function assertSameIdentity(a: Identity, b: Identity): void {
  assert.equal(a.name, b.name);
  assert.deepEqual(a.seeds, b.seeds);
  assert.deepEqual(a.publicKeys, b.publicKeys);
  assert.deepEqual(a.mlkemSecret, b.mlkemSecret);
}

async function writeEncrypted(dir: string, name = "alice"): Promise<[string, Identity]> {
  const path = join(dir, "identity.key");
  const id = await generateIdentity(name);
  await writeKeystore(path, id, { passphrase: PASS, params: FAST });
  return [path, id];
}

async function writePlain(dir: string): Promise<[string, Identity]> {
  const path = join(dir, "identity.key");
  const id = await generateIdentity("ci-runner");
  await writeKeystore(path, id, { passphrase: null });
  return [path, id];
}

async function mutate(path: string, fn: (b: Uint8Array) => Uint8Array): Promise<void> {
  await Deno.writeFile(path, fn(await Deno.readFile(path)));
}

function flip(offset: number) {
  return (b: Uint8Array) => {
    const c = b.slice();
    c[offset < 0 ? c.length + offset : offset] ^= 0x01;
    return c;
  };
}

Deno.test("keystore: encrypted round trip, 0600, passphrase asked once", async () => {
  await withTempDir(async (dir) => {
    const [path, id] = await writeEncrypted(dir, "alice ✓");
    if (posix) assert.equal(await modeOf(path), 0o600);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["identity.key"]);
    const bytes = await Deno.readFile(path);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 6)), "DENKEY");
    assert.equal(bytes.length, 57 + 194 + 16);
    for (const seed of [id.seeds.ed25519, id.seeds.x25519]) {
      assert.ok(!bytes.join(",").includes(seed.join(",")), "a seed is stored in the clear");
    }

    const get = passphrase(PASS);
    const loaded = await readKeystore(path, get);
    assertSameIdentity(loaded, id);
    assert.equal(get.calls, 1);
    assert.deepEqual(await readKeystoreHeader(path), {
      encrypted: true,
      params: FAST,
      version: 1,
    });
  });
});

Deno.test("keystore: unencrypted round trip never asks for a passphrase", async () => {
  await withTempDir(async (dir) => {
    const [path, id] = await writePlain(dir);
    if (posix) assert.equal(await modeOf(path), 0o600);
    const get = passphrase("unused");
    assertSameIdentity(await readKeystore(path, get), id);
    assert.equal(get.calls, 0);
    assert.deepEqual(await readKeystoreHeader(path), {
      encrypted: false,
      params: null,
      version: 1,
    });
  });
});

Deno.test("keystore: round trip at the real default Argon2id parameters", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "identity.key");
    const id = await generateIdentity("defaults");
    await writeKeystore(path, id, { passphrase: PASS });
    assert.deepEqual((await readKeystoreHeader(path)).params, ARGON2_DEFAULT);
    assertSameIdentity(await readKeystore(path, passphrase(PASS)), id);
  });
});

Deno.test("keystore: rewriting replaces the file atomically and keeps 0600", async () => {
  await withTempDir(async (dir) => {
    const [path] = await writeEncrypted(dir);
    const second = await generateIdentity("bob");
    await writeKeystore(path, second, { passphrase: null });
    if (posix) assert.equal(await modeOf(path), 0o600);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["identity.key"]);
    assertSameIdentity(await readKeystore(path, passphrase("x")), second);
  });
});

Deno.test("keystore: wrong passphrase names the file and changes nothing", async () => {
  await withTempDir(async (dir) => {
    const [path] = await writeEncrypted(dir);
    const before = await Deno.readFile(path);
    const statBefore = await Deno.stat(path);
    await assert.rejects(
      () => readKeystore(path, passphrase("wrong horse battery")),
      denError("wrong_passphrase", 1, [path, "wrong passphrase, or the key file was modified"]),
    );
    assert.deepEqual(await Deno.readFile(path), before);
    const statAfter = await Deno.stat(path);
    assert.equal(statAfter.mtime?.getTime(), statBefore.mtime?.getTime());
    assert.equal(statAfter.mode, statBefore.mode);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["identity.key"]);
  });
});

Deno.test("keystore: a changed header byte is detected", async () => {
  await withTempDir(async (dir) => {
    const [path] = await writeEncrypted(dir);
    const good = await Deno.readFile(path);
    const cases: [string, (b: Uint8Array) => Uint8Array, string, number, string][] = [
      ["magic", flip(0), "key_file_corrupt", 5, "magic"],
      ["version", flip(6), "key_file_corrupt", 5, "version"],
      ["kdf", (b) => b.map((v, i) => (i === 7 ? 9 : v)), "key_file_corrupt", 5, "key derivation"],
      ["memory", (b) => b.map((v, i) => (i === 8 ? 0xff : v)), "key_file_corrupt", 5, "memoryKiB"],
      ["iterations", (b) => b.map((v, i) => (i === 14 ? 0xff : v)), "key_file_corrupt", 5, "iter"],
      ["parallelism", (b) => b.map((v, i) => (i === 16 ? 0 : v)), "key_file_corrupt", 5, "para"],
      // In range but different: only the AEAD can notice, like a wrong passphrase.
      ["iterations 2", (b) => b.map((v, i) => (i === 15 ? 2 : v)), "wrong_passphrase", 1, path],
      ["salt", flip(20), "wrong_passphrase", 1, path],
      ["nonce", flip(40), "wrong_passphrase", 1, path],
    ];
    for (const [what, change, code, exit, mention] of cases) {
      await Deno.writeFile(path, change(good));
      await assert.rejects(
        () => readKeystore(path, passphrase(PASS)),
        denError(code, exit, [path, mention]),
        what,
      );
    }
    await Deno.writeFile(path, flip(6)(good));
    await assert.rejects(() => readKeystore(path, passphrase(PASS)), (err: unknown) => {
      return err instanceof DenError && (err.hint ?? "").includes("newer den") &&
        (err.hint ?? "").includes("den init --force");
    });
  });
});

Deno.test("keystore: a changed ciphertext byte reads as wrong passphrase", async () => {
  await withTempDir(async (dir) => {
    const [path] = await writeEncrypted(dir);
    for (const offset of [57, 150, -1]) {
      const good = await Deno.readFile(path);
      await mutate(path, flip(offset));
      await assert.rejects(
        () => readKeystore(path, passphrase(PASS)),
        denError("wrong_passphrase", 1, [path]),
      );
      await Deno.writeFile(path, good);
    }
  });
});

Deno.test("keystore: truncated or extended files are corrupt (exit 5) naming the file", async () => {
  await withTempDir(async (dir) => {
    for (const [label, write] of [["encrypted", writeEncrypted], ["plain", writePlain]] as const) {
      const [path] = await write(dir);
      const good = await Deno.readFile(path);
      for (const len of [0, 3, 10, 56, 57, 100, good.length - 1]) {
        await Deno.writeFile(path, good.subarray(0, len));
        const get = passphrase(PASS);
        await assert.rejects(
          () => readKeystore(path, get),
          denError("key_file_corrupt", 5, [path, "restore it from a backup"]),
          `${label} truncated to ${len}`,
        );
        assert.equal(get.calls, 0, "no passphrase is asked for a file that is structurally bad");
        await assert.rejects(() => readKeystoreHeader(path), denError("key_file_corrupt", 5));
      }
      await Deno.writeFile(path, new Uint8Array([...good, 0]));
      await assert.rejects(
        () => readKeystore(path, passphrase(PASS)),
        denError("key_file_corrupt", 5),
      );
      await Deno.remove(path);
    }
  });
});

Deno.test("keystore: any change to an unencrypted file is corrupt (exit 5)", async () => {
  await withTempDir(async (dir) => {
    const [path] = await writePlain(dir);
    const good = await Deno.readFile(path);
    for (const offset of [7, 9, 20, 40, 57, 58, 70, 200, good.length - 1]) {
      await Deno.writeFile(path, flip(offset)(good));
      await assert.rejects(
        () => readKeystore(path, passphrase(PASS)),
        denError("key_file_corrupt", 5, [path]),
        `offset ${offset}`,
      );
    }
    // A consistent checksum over a malformed payload is still refused.
    const payload = good.slice(57, 57 + 194);
    payload[1] = 0;
    const header = good.subarray(0, 57);
    const forged = new Uint8Array([
      ...header,
      ...payload,
      ...sha256(new Uint8Array([...header, ...payload])),
    ]);
    await Deno.writeFile(path, forged);
    await assert.rejects(
      () => readKeystore(path, passphrase(PASS)),
      denError("key_file_corrupt", 5, ["name"]),
    );
  });
});

Deno.test("keystore: oversized, missing and non-regular files", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "identity.key");
    await Deno.writeFile(path, new Uint8Array(5000), { mode: 0o600 });
    if (posix) await Deno.chmod(path, 0o600);
    await assert.rejects(
      () => readKeystore(path, passphrase(PASS)),
      denError("key_file_corrupt", 5, ["4096"]),
    );
    await assert.rejects(
      () => readKeystore(join(dir, "nope.key"), passphrase(PASS)),
      denError("no_identity", 1, ["den init"]),
    );
    const sub = join(dir, "sub");
    await Deno.mkdir(sub, { mode: 0o700 });
    await assert.rejects(
      () => readKeystore(sub, passphrase(PASS), { checkMode: false }),
      denError("key_file_corrupt", 5, ["not a regular file"]),
    );
  });
});

Deno.test({
  name: "keystore: group/other permissions are refused with a chmod hint",
  ignore: !posix,
  fn: async () => {
    await withTempDir(async (dir) => {
      const [path, id] = await writePlain(dir);
      await Deno.chmod(path, 0o644);
      await assert.rejects(
        () => readKeystore(path, passphrase(PASS)),
        denError("insecure_permissions", 1, [path, "0644", `chmod 600 ${path}`]),
      );
      assert.equal(await modeOf(path), 0o644, "a read never changes permissions");
      assertSameIdentity(await readKeystore(path, passphrase(PASS), { checkMode: false }), id);
      await Deno.chmod(path, 0o640);
      await assert.rejects(() => checkPrivateFile(path), denError("insecure_permissions", 1));
      await Deno.chmod(path, 0o400);
      await checkPrivateFile(path);
    });
  },
});

Deno.test("keystore: refuses an empty passphrase and out-of-range parameters", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "identity.key");
    const id = await generateIdentity("alice");
    await assert.rejects(
      () => writeKeystore(path, id, { passphrase: "" }),
      denError("empty_passphrase", 1),
    );
    const bad = { memoryKiB: 1024, iterations: 1, parallelism: 1 };
    await assert.rejects(
      () => writeKeystore(path, id, { passphrase: PASS, params: bad }),
      denError("bad_kdf_params", 2),
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("identity: wipeIdentity zeroes seeds and the ML-KEM secret", async () => {
  const id = await generateIdentity("alice");
  wipeIdentity(id);
  for (const b of [id.seeds.ed25519, id.seeds.x25519, id.seeds.mlkem, id.mlkemSecret]) {
    assert.ok(b.every((v) => v === 0));
  }
  await assert.rejects(() => generateIdentity(""), denError("bad_name", 2));
  await assert.rejects(() => generateIdentity("x".repeat(65)), denError("bad_name", 2));
  await assert.rejects(() => generateIdentity("evil\x1b[2J"), denError("bad_name", 2));
  await assert.rejects(() => generateIdentity(" padded"), denError("bad_name", 2));
  assert.equal((await generateIdentity("é".repeat(32))).name.length, 32);
});

Deno.test("pubfile: round trip, 0644, documented JSON shape", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "identity.pub");
    const id = await generateIdentity("alice");
    await writePublicFile(path, id);
    if (posix) assert.equal(await modeOf(path), 0o644);
    const json = JSON.parse(await Deno.readTextFile(path));
    assert.deepEqual(Object.keys(json), [
      "version",
      "name",
      "fingerprint",
      "ed25519",
      "x25519",
      "mlkem768",
    ]);
    assert.equal(json.version, 1);
    assert.deepEqual(fromBase64(json.mlkem768), id.publicKeys.mlkem768);
    const pub = await readPublicFile(path);
    assert.equal(pub.name, "alice");
    assert.equal(pub.fingerprint, fingerprint(id.publicKeys));
    assert.deepEqual(pub.publicKeys, id.publicKeys);
  });
});

Deno.test("pubfile: fingerprint mismatch and malformed files are exit 5 naming the file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "identity.pub");
    const id = await generateIdentity("alice");
    const other = await generateIdentity("mallory");
    await writePublicFile(path, id);
    const good = JSON.parse(await Deno.readTextFile(path));
    const write = (o: unknown) => Deno.writeTextFile(path, JSON.stringify(o));

    await write({ ...good, fingerprint: fingerprint(other.publicKeys) });
    await assert.rejects(() => readPublicFile(path), denError("pub_file_mismatch", 5, [path]));
    await write({ ...good, x25519: toBase64(other.publicKeys.x25519) });
    await assert.rejects(() => readPublicFile(path), denError("pub_file_mismatch", 5, [path]));

    const invalid: unknown[] = [
      { ...good, version: 2 },
      { ...good, name: 7 },
      { ...good, name: "" },
      { ...good, ed25519: good.ed25519.slice(4) },
      { ...good, ed25519: "not base64!" },
      { ...good, fingerprint: "abc" },
      [],
      "text",
    ];
    for (const o of invalid) {
      await write(o);
      await assert.rejects(() => readPublicFile(path), denError("pub_file_invalid", 5, [path]));
    }
    await Deno.writeFile(path, new Uint8Array([0xff, 0xfe]));
    await assert.rejects(() => readPublicFile(path), denError("pub_file_invalid", 5, [path]));
    await Deno.writeTextFile(path, " ".repeat(17 * 1024));
    await assert.rejects(() => readPublicFile(path), denError("pub_file_invalid", 5, ["16384"]));
  });
});

Deno.test({
  name: "permissions: private directories",
  ignore: !posix,
  fn: async () => {
    await withTempDir(async (dir) => {
      const nested = join(dir, "a", "b", "den");
      await ensurePrivateDir(nested);
      assert.equal(await modeOf(nested), 0o700);
      await ensurePrivateDir(nested); // existing and private: fine
      await checkPrivateDir(nested);

      const open = join(dir, "open");
      await Deno.mkdir(open);
      await Deno.chmod(open, 0o755);
      await assert.rejects(
        () => ensurePrivateDir(open),
        denError("insecure_permissions", 1, [open, "0755", `chmod 700 ${open}`]),
      );
      assert.equal(await modeOf(open), 0o755, "a user's existing directory is not re-permissioned");
      const file = join(dir, "file");
      await Deno.writeTextFile(file, "");
      await assert.rejects(() => ensurePrivateDir(file), denError("not_a_directory", 1));
    });
  },
});

Deno.test("passphrase: --passphrase-file first, then DEN_PASSPHRASE, else no_passphrase", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "pass");
    const env = (v: string | undefined) => (k: string) => k === "DEN_PASSPHRASE" ? v : undefined;
    const base = { purpose: "unlock identity.key", interactive: false };

    await Deno.writeTextFile(file, "from file\n");
    assert.equal(await obtainPassphrase({ ...base, file, env: env("from env") }), "from file");
    await Deno.writeTextFile(file, "crlf\r\n");
    assert.equal(await obtainPassphrase({ ...base, file }), "crlf");
    await Deno.writeTextFile(file, "two newlines\n\n");
    assert.equal(await obtainPassphrase({ ...base, file }), "two newlines\n");
    await Deno.writeTextFile(file, " spaces kept ");
    assert.equal(await obtainPassphrase({ ...base, file }), " spaces kept ");

    for (const content of ["", "\n"]) {
      await Deno.writeTextFile(file, content);
      await assert.rejects(
        () => obtainPassphrase({ ...base, file }),
        denError("bad_passphrase_file", 1, [file]),
      );
    }
    await Deno.writeFile(file, new Uint8Array(4097).fill(0x61));
    await assert.rejects(
      () => obtainPassphrase({ ...base, file }),
      denError("bad_passphrase_file", 1, ["4096"]),
    );
    await assert.rejects(
      () => obtainPassphrase({ ...base, file: join(dir, "missing"), env: env("x") }),
      denError("passphrase_file_missing", 2),
    );

    assert.equal(await obtainPassphrase({ ...base, env: env("from env") }), "from env");
    for (const v of [undefined, ""]) {
      await assert.rejects(
        () => obtainPassphrase({ ...base, env: env(v) }),
        denError("no_passphrase", 1, [
          "--passphrase-file",
          "DEN_PASSPHRASE",
          "terminal",
          "den init --no-passphrase",
        ]),
      );
    }
  });
});

Deno.test("line editor: enter, backspace over UTF-8, Ctrl-U, escape sequences, cancel", () => {
  const feed = (...chunks: (string | number[])[]) => {
    const line = new HiddenLine();
    let event = "more";
    for (const c of chunks) {
      event = line.feed(typeof c === "string" ? utf8(c) : Uint8Array.from(c));
      if (event !== "more") break;
    }
    return [event, line.text()];
  };
  assert.deepEqual(feed("secret\r"), ["done", "secret"]);
  assert.deepEqual(feed("sec", "ret\n"), ["done", "secret"]);
  assert.deepEqual(feed("secrett", [0x7f], "\r"), ["done", "secret"]);
  assert.deepEqual(feed("caf€", [0x7f], "e\r"), ["done", "cafe"]);
  assert.deepEqual(feed("€", [0x7f, 0x7f, 0x08], "ok\r"), ["done", "ok"]);
  assert.deepEqual(feed("junk", [0x15], "pw\r"), ["done", "pw"]);
  assert.deepEqual(feed("p", [0x1b, 0x5b, 0x44], "w", [0x1b, 0x4f, 0x41], "\r"), ["done", "pw"]);
  assert.deepEqual(feed("a\tb\r"), ["done", "ab"]);
  assert.deepEqual(feed("abc", [0x03]), ["cancel", "abc"]);
  assert.deepEqual(feed([0x04]), ["cancel", ""]);
  assert.deepEqual(feed("a", [0x04], "b\r"), ["done", "ab"]);
  const long = new HiddenLine();
  assert.equal(long.feed(new Uint8Array(2000).fill(0x61)), "more");
  assert.equal(long.overflow, true);
  long.wipe();
  assert.equal(long.text(), "");
});
