import assert from "node:assert/strict";
import { utf8 } from "../../src/crypto/encoding.ts";
import { sha256 } from "../../src/crypto/kdf.ts";
import { Ed25519Verifier } from "../../src/crypto/sign.ts";
import { fingerprint } from "../../src/identity/fingerprint.ts";
import { type Identity, identityFromSeeds } from "../../src/identity/keys.ts";
import { copiesOf, foldEnv, liveKeys, versionOf } from "../../src/secrets/fold.ts";
import {
  type Change,
  createOp,
  MAX_ENTRIES,
  type Op,
  type OpBody,
  type OpDraft,
  openEntries,
  OpError,
  opRecordBytes,
  parseOp,
  type ReaderKeys,
  readerKeysFor,
  type Recipient,
  recipientOf,
  splitChanges,
  validateOpBody,
  verifyOp,
} from "../../src/secrets/op.ts";
import { OpsLog } from "../../src/secrets/ops_log.ts";
import {
  MAX_RECORD_BYTES,
  RecordError,
  RecordKind,
  signRecord,
} from "../../src/wire/signed_record.ts";

const TEAM = "0123456789abcdef".repeat(4);
const OTHER_TEAM = "f".repeat(64);

interface Member {
  id: Identity;
  fp: string;
  recipient: Recipient;
  reader: ReaderKeys;
  author: { fingerprint: string; signing: CryptoKey };
}

async function member(n: number): Promise<Member> {
  const seed = (k: number, len: number) => sha256(utf8(`member ${n} ${k}`)).slice(0, len);
  const id = await identityFromSeeds(`m${n}`, {
    ed25519: seed(0, 32),
    x25519: seed(1, 32),
    mlkem: new Uint8Array([...seed(2, 32), ...seed(3, 32)]),
  });
  const fp = fingerprint(id.publicKeys);
  return {
    id,
    fp,
    recipient: recipientOf(id.publicKeys),
    reader: await readerKeysFor(id),
    author: { fingerprint: fp, signing: id.signing },
  };
}

function draft(changes: Change[], over: Partial<OpDraft> = {}): OpDraft {
  return {
    team: TEAM,
    env: "prod",
    seq: 1,
    prev: null,
    lamport: 1,
    ts: 1700000000000,
    changes,
    ...over,
  };
}

function code(c: string) {
  return (err: unknown) => (err instanceof OpError || err instanceof RecordError) && err.code === c;
}

/** Appends an op to `m`'s chain in `log` (next link), with deletes only unless values given. */
async function append(
  log: OpsLog,
  m: Member,
  env: string,
  changes: Change[],
  opts: { lamport?: number; readers?: Recipient[]; ts?: number } = {},
): Promise<Op> {
  const link = log.next(m.fp, env);
  const op = await createOp(
    m.author,
    draft(changes, { env, ...link, lamport: opts.lamport ?? link.lamport, ts: opts.ts ?? 0 }),
    opts.readers ?? [m.recipient],
  );
  assert.equal(log.add(op), "added");
  return op;
}

const del = (key: string): Change => ({ key, delete: true });

Deno.test("ops: createOp → parseOp → verifyOp round trip", async () => {
  const [a, b] = await Promise.all([member(1), member(2)]);
  const op = await createOp(
    a.author,
    draft([{ key: "API_KEY", value: "s3cret" }, del("OLD"), {
      key: "DB",
      copyOf: { op: "ab".repeat(32), index: 3 },
      value: "postgres://",
    }]),
    [a.recipient, b.recipient],
  );
  assert.ok(op.record.bytes.length <= MAX_RECORD_BYTES);
  const parsed = parseOp(op.record.bytes);
  assert.equal(parsed.hash, op.hash);
  assert.deepEqual(parsed.body, op.body);
  assert.deepEqual(parsed.body.entries.map((e) => e.op), ["set", "del", "copy"]);
  const verifier = new Ed25519Verifier();
  assert.equal(await verifyOp(parsed, a.id.publicKeys.ed25519, verifier), true);
  assert.equal(await verifyOp(parsed, b.id.publicKeys.ed25519, verifier), false, "other author");
  assert.deepEqual(await openEntries(parsed, b.reader), ["s3cret", null, "postgres://"]);
});

Deno.test("ops: a changed body byte fails verifyOp (or parseOp)", async () => {
  const a = await member(1);
  const op = await createOp(a.author, draft([{ key: "K", value: "v" }], { ts: 1234 }), [
    a.recipient,
  ]);
  const verifier = new Ed25519Verifier();
  const text = new TextDecoder().decode(op.record.body);
  const at = 6 + text.indexOf('"ts":1234') + 5; // record header is 6 bytes
  const bytes = op.record.bytes.slice();
  bytes[at] = "9".charCodeAt(0);
  const changed = parseOp(bytes);
  assert.equal(changed.body.ts, 9234);
  assert.notEqual(changed.hash, op.hash);
  assert.equal(await verifyOp(changed, a.id.publicKeys.ed25519, verifier), false);
  // Every other single-byte change: refused by parseOp or by the signature.
  for (let i = 0; i < op.record.bytes.length; i += 97) {
    const b = op.record.bytes.slice();
    b[i] ^= 0x01;
    let parsed: Op;
    try {
      parsed = parseOp(b);
    } catch {
      continue;
    }
    assert.equal(await verifyOp(parsed, a.id.publicKeys.ed25519, verifier), false, `byte ${i}`);
  }
  assert.equal(await verifyOp(op, a.id.publicKeys.ed25519, verifier), true);
});

/** A record with this body, signed: the schema is what must refuse it. */
async function signed(a: Member, body: unknown): Promise<Uint8Array> {
  return (await signRecord(RecordKind.op, body, a.id.signing)).bytes;
}

Deno.test("ops: parseOp refuses truncated, oversized and foreign records", async () => {
  const a = await member(1);
  const op = await createOp(a.author, draft([{ key: "K", value: "v" }]), [a.recipient]);
  const bytes = op.record.bytes;
  assert.throws(() => parseOp(bytes.subarray(0, bytes.length - 1)), code("truncated"));
  assert.throws(() => parseOp(bytes.subarray(0, 10)), code("truncated"));
  assert.throws(() => parseOp(new Uint8Array()), code("truncated"));
  assert.throws(() => parseOp(new Uint8Array([...bytes, 0])), code("truncated"));
  assert.throws(() => parseOp(new Uint8Array(MAX_RECORD_BYTES + 1)), code("too_large"));
  const teamBlock = (await signRecord(RecordKind.teamBlock, op.body, a.id.signing)).bytes;
  assert.throws(() => parseOp(teamBlock), code("kind"));
  const notJson = bytes.slice();
  notJson[6] = "[".charCodeAt(0);
  assert.throws(() => parseOp(notJson), code("malformed"));
});

Deno.test("ops: parseOp refuses bodies outside the schema, each with its code", async () => {
  const a = await member(1);
  const op = await createOp(a.author, draft([{ key: "K", value: "v" }, del("D")]), [a.recipient]);
  const good = op.body;
  const ct = (good.entries[0] as { ct: string }).ct;
  const body = (over: Partial<Record<keyof OpBody, unknown>>) => ({ ...good, ...over });
  const dels = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `K${i}`, op: "del" }));
  const cases: [string, unknown][] = [
    ["bad_key", body({ entries: [{ key: "1BAD", op: "del" }] })],
    ["bad_key", body({ entries: [{ key: "A-B", op: "del" }] })],
    ["bad_key", body({ entries: [{ key: "K".repeat(129), op: "del" }] })],
    ["duplicate_key", body({ entries: [{ key: "K", op: "set", ct }, { key: "K", op: "del" }] })],
    ["too_many_entries", body({ entries: dels(MAX_ENTRIES + 1), wraps: [] })],
    ["no_entries", body({ entries: [], wraps: [] })],
    ["bad_env", body({ env: "has space" })],
    ["bad_env", body({ env: ".hidden" })],
    ["bad_env", body({ env: "e".repeat(33) })],
    ["version", body({ v: 2 })],
    ["schema", body({ seq: "1" })],
    ["schema", body({ seq: 0 })],
    ["schema", body({ seq: 1.5 })],
    ["schema", body({ lamport: 0 })],
    ["schema", body({ ts: -1 })],
    ["schema", body({ team: TEAM.toUpperCase() })],
    ["schema", body({ author: "not a fingerprint" })],
    ["schema", body({ prev: "ab".repeat(32) })], // seq 1 has no prev
    ["schema", body({ seq: 2, prev: null })],
    ["schema", body({ entries: "K" })],
    ["schema", body({ wraps: {} })],
    ["schema", body({ entries: [{ key: "K", op: "put", ct }] })],
    ["schema", body({ entries: [{ key: "K", op: "set" }] })],
    ["schema", body({ entries: [{ key: "K", op: "set", ct, extra: 1 }] })],
    ["schema", body({ entries: [{ key: "K", op: "set", ct: ct.slice(1) }] })],
    ["schema", body({ entries: [{ key: "K", op: "set", ct: "AAAA" }] })], // shorter than nonce+tag
    ["schema", body({ entries: [{ key: "K", op: "copy", of: "x", index: 0, ct }] })],
    ["schema", body({ entries: [{ key: "K", op: "copy", of: op.hash, index: -1, ct }] })],
    ["schema", body({ entries: [{ key: "K", op: "del" }] })], // wraps without values
    ["schema", body({ wraps: [] })], // values without wraps
    ["schema", body({ wraps: [{ ...good.wraps[0], eph: good.wraps[0].key }] })],
    ["schema", { ...good, extra: true }],
    ["schema", Object.fromEntries(Object.entries(good).filter(([k]) => k !== "ts"))],
    ["duplicate_reader", body({ wraps: [good.wraps[0], good.wraps[0]] })],
    [
      "value_too_large",
      body({ entries: [{ key: "K", op: "set", ct: btoa("x".repeat(32 * 1024 + 29)) }] }),
    ],
  ];
  for (const [want, b] of cases) {
    const bytes = await signed(a, b);
    assert.throws(() => parseOp(bytes), code(want), `${want}: ${JSON.stringify(b).slice(0, 140)}`);
  }
  // Too many wraps cannot even fit a record; the schema refuses them as well.
  const wraps = Array.from({ length: 101 }, () => good.wraps[0]);
  assert.throws(() => validateOpBody({ ...good, wraps }), code("too_many_wraps"));

  // Valid JSON, same meaning, another encoding: refused, so an op has one byte form.
  const { v, team, ...rest } = good;
  const reordered = { team, v, ...rest };
  for (const text of [JSON.stringify(good, null, 1), JSON.stringify(reordered)]) {
    const body = utf8(text);
    const bytes = new Uint8Array(6 + body.length + 64);
    bytes.set([1, RecordKind.op], 0);
    new DataView(bytes.buffer).setUint32(2, body.length);
    bytes.set(body, 6);
    assert.throws(() => parseOp(bytes), code("not_canonical"));
  }
  assert.equal(parseOp(await signed(a, good)).hash, op.hash, "the original still parses");
});

Deno.test("ops: createOp refuses bad drafts before encrypting anything", async () => {
  const [a, b] = await Promise.all([member(1), member(2)]);
  const bad: [string, OpDraft, Recipient[]][] = [
    ["bad_key", draft([{ key: "BAD-KEY", value: "" }]), [a.recipient]],
    ["duplicate_key", draft([{ key: "K", value: "" }, del("K")]), [a.recipient]],
    ["no_entries", draft([]), [a.recipient]],
    ["too_many_entries", draft(Array.from({ length: 1001 }, (_, i) => del(`K${i}`))), []],
    ["value_too_large", draft([{ key: "K", value: "é".repeat(16385) }]), [a.recipient]],
    ["bad_value", draft([{ key: "K", value: "lone \ud800 surrogate" }]), [a.recipient]],
    ["bad_env", draft([del("K")], { env: "a/b" }), []],
    ["schema", draft([del("K")], { prev: "ab".repeat(32) }), []],
    ["schema", draft([del("K")], { team: "team" }), []],
    ["no_readers", draft([{ key: "K", value: "v" }]), []],
    ["duplicate_reader", draft([{ key: "K", value: "v" }]), [a.recipient, a.recipient]],
    [
      "too_large",
      draft([{ key: "A", value: "x".repeat(30000) }, { key: "B", value: "y".repeat(30000) }]),
      [a.recipient, b.recipient],
    ],
  ];
  for (const [want, d, readers] of bad) {
    await assert.rejects(createOp(a.author, d, readers), code(want), want);
  }
  // A delete-only op carries no wraps, whatever readers are given.
  const op = await createOp(a.author, draft([del("K")]), [a.recipient, b.recipient]);
  assert.deepEqual(op.body.wraps, []);
  assert.deepEqual(parseOp(op.record.bytes).body, op.body);
});

Deno.test("ops log: link rules — duplicate, gap, fork, bad prev, lamport, team", async () => {
  const [a, b] = await Promise.all([member(1), member(2)]);
  const log = new OpsLog(TEAM);
  const a1 = await append(log, a, "prod", [del("K1")]);
  const a2 = await append(log, a, "prod", [del("K2")]);
  assert.equal(log.add(a1), "duplicate");
  assert.equal(log.add(a2), "duplicate");

  const mk = (over: Partial<OpDraft>, author = a) =>
    createOp(author.author, draft([del("X")], over), []);
  assert.equal(log.add(await mk({ seq: 2, prev: a1.hash, lamport: 9 })), "fork");
  assert.equal(log.add(await mk({ seq: 1, lamport: 7 })), "fork");
  assert.equal(log.add(await mk({ seq: 4, prev: a2.hash, lamport: 9 })), "gap");
  assert.equal(log.add(await mk({ seq: 3, prev: a1.hash, lamport: 9 })), "bad_link");
  assert.equal(
    log.add(await mk({ seq: 3, prev: a2.hash, lamport: a2.body.lamport })),
    "bad_lamport",
  );
  assert.equal(log.add(await mk({ seq: 3, prev: a2.hash, lamport: 1 })), "bad_lamport");
  assert.equal(
    log.add(await mk({ team: OTHER_TEAM, seq: 3, prev: a2.hash, lamport: 9 })),
    "wrong_team",
  );
  assert.equal(log.add(await mk({ seq: 2, prev: "00".repeat(32), lamport: 1 }, b)), "gap");
  // seq 1 with a prev cannot be created or parsed; the log refuses it on its own too.
  const b1 = await mk({ lamport: 1 }, b);
  assert.equal(log.add({ ...b1, body: { ...b1.body, prev: a1.hash } }), "bad_link");
  assert.equal(log.add(b1), "added");
  assert.equal(log.size, 3);

  const a3 = await mk({ seq: 3, prev: a2.hash, lamport: 3 });
  assert.equal(log.add(a3), "added");
  assert.deepEqual(log.after(a.fp, "prod", 1).map((o) => o.body.seq), [2, 3]);
  assert.deepEqual(log.after(a.fp, "prod", 0), [a1, a2, a3]);
  assert.deepEqual(log.after(a.fp, "prod", 3), []);
  assert.deepEqual(log.after(a.fp, "nowhere", 0), []);
  assert.equal(log.get(a3.hash), a3);
});

Deno.test("ops log: heads, next, after, missingFor, ops, maxLamport", async () => {
  const [a, b] = await Promise.all([member(1), member(2)]);
  const log = new OpsLog(TEAM);
  assert.deepEqual(log.next(a.fp, "prod"), { seq: 1, prev: null, lamport: 1 });
  const a1 = await append(log, a, "prod", [del("K")]);
  const b1 = await append(log, b, "prod", [del("K")]);
  const b2 = await append(log, b, "prod", [del("K")]);
  const s1 = await append(log, a, "staging", [del("K")]);
  assert.deepEqual([a1, b1, b2].map((o) => o.body.lamport), [1, 2, 3], "lamport tracks the env");
  assert.equal(s1.body.lamport, 1, "each env has its own clock");
  assert.equal(log.maxLamport("prod"), 3);
  assert.equal(log.maxLamport("staging"), 1);
  assert.equal(log.maxLamport("none"), 0);
  assert.deepEqual(log.next(a.fp, "prod"), { seq: 2, prev: a1.hash, lamport: 4 });

  const [first, second] = [a.fp, b.fp].sort();
  const heads = log.heads();
  assert.deepEqual(
    heads.map((h) => [h.env, h.author]),
    [["prod", first], ["prod", second], ["staging", a.fp]],
  );
  assert.deepEqual(log.head(b.fp, "prod"), {
    author: b.fp,
    env: "prod",
    seq: 2,
    hash: b2.hash,
    lamport: 3,
  });
  assert.equal(log.head(b.fp, "staging"), undefined);

  assert.deepEqual(log.missingFor(heads), []);
  const chainOf = (m: Member) => (m === a ? [a1] : [b1, b2]);
  assert.deepEqual(log.missingFor([]), [
    ...chainOf(first === a.fp ? a : b),
    ...chainOf(first === a.fp ? b : a),
    s1,
  ]);
  const missing = log.missingFor([{ author: b.fp, env: "prod", seq: 1 }, {
    author: a.fp,
    env: "staging",
    seq: 1,
  }]);
  assert.deepEqual(missing.map((o) => o.hash).sort(), [a1.hash, b2.hash].sort());
  // What missingFor lists can be added in that order on the other side.
  const other = new OpsLog(TEAM);
  for (const op of log.missingFor([])) assert.equal(other.add(op), "added");
  assert.deepEqual(other.heads(), heads);
  assert.deepEqual(log.ops("staging"), [s1]);
  assert.equal(log.ops().length, 4);
  assert.deepEqual(new Set(log.ops("prod")), new Set([a1, b1, b2]));
});

/** Fisher–Yates with a seeded generator, so a failure can be replayed. */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

Deno.test("fold: deterministic, concurrent writes, deletes, versions", async () => {
  const [a, b, c] = await Promise.all([member(1), member(2), member(3)]);
  const log = new OpsLog(TEAM);
  const readers = [a.recipient, b.recipient, c.recipient];
  const set = (key: string, value: string): Change => ({ key, value });
  // A partition: a and b both write X at lamport 1, then each goes on.
  const a1 = await append(log, a, "prod", [set("X", "from a"), set("Y", "y1")], { readers });
  const b1 = await append(log, b, "prod", [set("X", "from b")], { readers, lamport: 1 });
  const a2 = await append(log, a, "prod", [del("Y")], { readers });
  const c1 = await append(log, c, "prod", [set("Z", "z")], { readers, lamport: 1 });
  const other = await append(log, c, "staging", [set("X", "staging")], { readers });
  const ops = log.ops();

  const state = foldEnv(ops, "prod");
  const json = JSON.stringify([...state]);
  for (let seed = 1; seed <= 20; seed++) {
    assert.equal(JSON.stringify([...foldEnv(shuffled(ops, seed), "prod")]), json, `seed ${seed}`);
  }
  assert.equal(
    JSON.stringify([...foldEnv([...ops, ...ops], "prod")]),
    json,
    "duplicates count once",
  );
  assert.deepEqual([...state.keys()], ["X", "Y", "Z"]);

  const x = state.get("X")!;
  const [winner, loser] = a.fp > b.fp ? [a1, b1] : [b1, a1];
  assert.equal(x.versions.length, 2, "both concurrent writes are kept");
  assert.deepEqual(x.versions.map((v) => v.op), [loser.hash, winner.hash]);
  assert.equal(x.current.op, winner.hash, "the larger fingerprint wins the tie");
  assert.deepEqual(x.versions.map((v) => v.version), [1, 2]);
  assert.equal(
    await openEntries(winner, c.reader).then((v) => v![0]),
    a.fp > b.fp ? "from a" : "from b",
  );

  const y = state.get("Y")!;
  assert.deepEqual(y.versions.map((v) => [v.version, v.op, v.index, v.deleted]), [
    [1, a1.hash, 1, false],
    [2, a2.hash, 0, true],
  ]);
  assert.equal(y.current.deleted, true);
  assert.deepEqual(liveKeys(state).map((k) => k.key), ["X", "Z"]);
  assert.equal(versionOf(state, "Y", 1)?.op, a1.hash);
  assert.equal(versionOf(state, "Y", 3), undefined);
  assert.deepEqual(state.get("Z")!.current, {
    version: 1,
    op: c1.hash,
    index: 0,
    author: c.fp,
    ts: 0,
    lamport: 1,
    deleted: false,
  });
  assert.deepEqual([...foldEnv(ops, "staging").keys()], ["X"]);
  assert.equal(foldEnv(ops, "staging").get("X")!.current.op, other.hash);
  assert.equal(foldEnv(ops, "none").size, 0);

  // Set again after a delete: a new version, live again.
  await append(log, b, "prod", [set("Y", "back")], { readers });
  const again = foldEnv(log.ops(), "prod").get("Y")!;
  assert.deepEqual(again.versions.map((v) => v.deleted), [false, true, false]);
});

Deno.test("fold: copy entries make no version; copiesOf finds them", async () => {
  const [a, b, c] = await Promise.all([member(1), member(2), member(3)]);
  const log = new OpsLog(TEAM);
  const a1 = await append(log, a, "prod", [{ key: "K", value: "v1" }, { key: "L", value: "l" }], {
    readers: [a.recipient],
  });
  const before = JSON.stringify([...foldEnv(log.ops(), "prod")]);
  // c joins: b re-encrypts, later a does too, and a stray copy under another key is ignored.
  const byB = await append(log, b, "prod", [{
    key: "K",
    copyOf: { op: a1.hash, index: 0 },
    value: "v1",
  }], {
    readers: [a.recipient, b.recipient, c.recipient],
  });
  const byA = await append(log, a, "prod", [
    { key: "L", copyOf: { op: a1.hash, index: 1 }, value: "l" },
    { key: "K", copyOf: { op: a1.hash, index: 0 }, value: "v1" },
  ], { readers: [a.recipient, c.recipient] });
  await append(log, b, "prod", [{ key: "M", copyOf: { op: a1.hash, index: 0 }, value: "x" }], {
    readers: [b.recipient],
  });
  await append(log, c, "staging", [{ key: "K", copyOf: { op: a1.hash, index: 0 }, value: "x" }], {
    readers: [c.recipient],
  });
  const ops = log.ops();
  assert.equal(JSON.stringify([...foldEnv(ops, "prod")]), before, "copies create no version");

  const where = copiesOf(shuffled(ops, 7), a1.hash, 0);
  assert.deepEqual(where.map((w) => [w.op.hash, w.index]), [
    [a1.hash, 0], // the original
    [byA.hash, 1], // a copy by the version's own author
    [byB.hash, 0],
  ]);
  assert.deepEqual(copiesOf(ops, a1.hash, 1).map((w) => [w.op.hash, w.index]), [
    [a1.hash, 1],
    [byA.hash, 0],
  ]);
  assert.deepEqual(copiesOf(ops, a1.hash, 5), []);
  assert.deepEqual(copiesOf(ops, "0".repeat(64), 0), []);
  assert.deepEqual(copiesOf(ops, byB.hash, 0), [], "a copy is not a version");

  // c could not read the original, but can read a copy, and the copy opens as a copy.
  assert.equal(await openEntries(a1, c.reader), null);
  const readable = where.find((w) => w.op.body.wraps.some((x) => x.reader === c.fp))!;
  assert.equal((await openEntries(readable.op, c.reader, [readable.index]))![readable.index], "v1");
});

Deno.test("ops: splitChanges keeps ops under the record limit (500 keys × 10 readers)", async () => {
  const members = await Promise.all(Array.from({ length: 10 }, (_, i) => member(i + 1)));
  const readers = members.map((m) => m.recipient);
  const changes: Change[] = Array.from({ length: 500 }, (_, i) => {
    if (i % 50 === 7) return del(`DEL_${i}`);
    const size = i % 97 === 0 ? 12000 : (i * 131) % 900;
    return { key: `KEY_${i}`, value: "v".repeat(size) + "é".repeat(i % 5) };
  });
  const parts = splitChanges(changes, readers.length);
  assert.ok(parts.length > 1 && parts.length < 20, `${parts.length} parts`);
  assert.deepEqual(parts.flat(), changes, "every change, in order");

  const log = new OpsLog(TEAM);
  const a = members[0];
  for (const part of parts) {
    assert.ok(part.length <= MAX_ENTRIES);
    const link = log.next(a.fp, "production");
    const d = draft(part, { env: "production", ...link });
    const op = await createOp(a.author, d, readers);
    assert.ok(op.record.bytes.length <= MAX_RECORD_BYTES);
    const header = { ...d, author: a.fp };
    assert.equal(op.record.bytes.length, opRecordBytes(part, readers.length, header), "exact size");
    assert.ok(opRecordBytes(part, readers.length) <= MAX_RECORD_BYTES);
    assert.equal(log.add(parseOp(op.record.bytes)), "added");
  }
  const state = foldEnv(log.ops(), "production");
  assert.equal(liveKeys(state).length, 490);
  const last = members[9];
  const key = state.get("KEY_97")!.current;
  const holder = log.get(key.op)!;
  assert.equal(
    (await openEntries(holder, last.reader, [key.index]))![key.index],
    "v".repeat(12000) + "éé",
  );

  // A repeated key starts a new op, so the later value wins when the parts are applied in order.
  const repeated = splitChanges([{ key: "A", value: "1" }, del("B"), { key: "A", value: "2" }], 3);
  assert.deepEqual(repeated.map((p) => p.map((c) => c.key)), [["A", "B"], ["A"]]);
  assert.equal(splitChanges(Array.from({ length: 2500 }, (_, i) => del(`K${i}`)), 0).length, 3);
  assert.deepEqual(splitChanges([], 3), []);
  // A change that cannot fit in any op, and more readers than an op can list.
  assert.throws(
    () => splitChanges([{ key: "BIG", value: "x".repeat(32768) }], 11),
    code("too_large"),
  );
  assert.equal(splitChanges([{ key: "BIG", value: "x".repeat(32768) }], 10).length, 1);
  assert.throws(() => splitChanges([del("K")], 101), code("too_many_wraps"));
});
