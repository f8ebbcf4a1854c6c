/**
 * Ops from the wire that must not get in: the real SecretsService, TeamService and Store (SQLite
 * in a temp dir) fed tampered, truncated, foreign and replayed ops the way SecretsSync feeds them
 * (`receive(team, records, source)`). Whatever is refused is reported in den.db's rejected table;
 * nothing accepted before is lost, and a replay changes nothing.
 */
import assert from "node:assert/strict";
import { ed25519FromSeed } from "../../src/crypto/sign.ts";
import { fingerprint } from "../../src/identity/fingerprint.ts";
import { generateIdentity, type Identity } from "../../src/identity/keys.ts";
import { Logger } from "../../src/log/logger.ts";
import { MetricsRegistry } from "../../src/metrics/registry.ts";
import { createOp, type Op, type Recipient, recipientOf } from "../../src/secrets/op.ts";
import { SecretsService } from "../../src/secrets/service.ts";
import { Store } from "../../src/store/store.ts";
import { memberInfoOf, signJoinProof } from "../../src/team/block.ts";
import type { TeamChain } from "../../src/team/chain.ts";
import { TeamService } from "../../src/team/service.ts";

interface Node {
  id: Identity;
  fp: string;
}

async function node(name: string): Promise<Node> {
  const id = await generateIdentity(name);
  return { id, fp: fingerprint(id.publicKeys) };
}

/** One daemon's services on a den.db, without sockets. */
async function services(path: string, me: Node, logs: string[]) {
  const store = Store.open(path);
  const log = new Logger("test", { level: "debug", sink: (l) => logs.push(l) });
  const metrics = new MetricsRegistry();
  const teams = new TeamService({
    store,
    identity: me.id,
    fingerprint: me.fp,
    log: log.child("team"),
    metrics,
    addresses: () => ["127.0.0.1:7834"],
  });
  await teams.load();
  const secrets = new SecretsService({
    store,
    identity: me.id,
    fingerprint: me.fp,
    teams,
    log: log.child("secrets"),
    metrics,
  });
  await secrets.load();
  return { store, teams, secrets, metrics };
}

/** Adds `who` to the team the way an inviter does: invite proposal, then member_added. */
async function addMember(teams: TeamService, chain: TeamChain, who: Node): Promise<void> {
  const proposal = await teams.proposeInvite(chain, "member", ["default"], 3600_000);
  const seed = teams.inviteSeed(proposal.hash);
  assert.ok(seed, "the invite's one-time key is kept");
  const key = await ed25519FromSeed(seed);
  await teams.append(chain, {
    type: "member_added",
    proposal: proposal.hash,
    member: memberInfoOf(who.id, []),
    invite_sig: await signJoinProof(key.privateKey, chain.id, proposal.hash, who.fp),
  });
  assert.ok(chain.state().members.has(who.fp));
}

function rejectedCount(metrics: MetricsRegistry, reason: string): number {
  const line = metrics.render().split("\n").find((l) =>
    l.startsWith("den_ops_rejected_total{") && l.includes(`reason="${reason}"`)
  );
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

/** Flips one byte of the body (inside a ciphertext: the JSON stays valid and canonical). */
function flipInBody(op: Op): Uint8Array {
  const bytes = op.record.bytes.slice();
  const text = new TextDecoder().decode(bytes);
  const at = text.indexOf('"ct":"') + 6 + 5;
  assert.ok(at > 11);
  bytes[at] = bytes[at] === 0x41 ? 0x42 : 0x41;
  return bytes;
}

Deno.test("secrets wire: tampered, truncated, foreign and replayed ops are refused or no-ops", async () => {
  const dir = await Deno.makeTempDir({ prefix: "den-wire-" });
  const logs: string[] = [];
  const [alpha, bravo, mallory] = [await node("alpha"), await node("bravo"), await node("mallory")];
  let s = await services(`${dir}/den.db`, alpha, logs);
  try {
    const chain = await s.teams.create("acme");
    await addMember(s.teams, chain, bravo);
    const team = chain.id;
    const readers: Recipient[] = [alpha, bravo].map((n) => recipientOf(n.id.publicKeys));

    // Stored before the attack: alpha's own value and bravo's first op.
    await s.secrets.set(chain, "default", [["OWN", "alpha-own"]]);
    const draft = (
      seq: number,
      prev: string | null,
      lamport: number,
      key: string,
      value: string,
    ) => ({
      team,
      env: "default",
      seq,
      prev,
      lamport,
      ts: Date.now(),
      changes: [{ key, value }],
    });
    const bravoAuthor = { fingerprint: bravo.fp, signing: bravo.id.signing };
    const b1 = await createOp(bravoAuthor, draft(1, null, 5, "B1", "bravo-one"), readers);
    assert.deepEqual(await s.secrets.receive(team, [b1.record.bytes], bravo.fp), { gap: false });
    const b2 = await createOp(bravoAuthor, draft(2, b1.hash, 6, "B2", "bravo-two"), readers);

    const opsBefore = s.store.ops(team).length;
    assert.equal(opsBefore, 2);
    assert.equal(s.store.rejected(team).length, 0);

    // 1. b2 with one byte flipped in its body.
    await s.secrets.receive(team, [flipInBody(b2)], bravo.fp);
    // 2. b2 with one byte flipped in its signature (same hash: the hash leaves it out).
    const badSig = b2.record.bytes.slice();
    badSig[badSig.length - 10] ^= 0x40;
    await s.secrets.receive(team, [badSig], bravo.fp);
    // 3. b2 truncated, at several places.
    for (const cut of [1, 5, 40, b2.record.bytes.length - 1]) {
      await s.secrets.receive(team, [b2.record.bytes.slice(0, cut)], bravo.fp);
    }
    // 4. An op by someone who is not in the team, and one in bravo's name signed by mallory.
    const foreign = await createOp(
      { fingerprint: mallory.fp, signing: mallory.id.signing },
      draft(1, null, 7, "EVIL", "mallory"),
      readers,
    );
    await s.secrets.receive(team, [foreign.record.bytes], mallory.fp);
    const forged = await createOp(
      { fingerprint: bravo.fp, signing: mallory.id.signing },
      draft(2, b1.hash, 7, "B2", "forged"),
      readers,
    );
    await s.secrets.receive(team, [forged.record.bytes], bravo.fp);

    const rejected = s.store.rejected(team);
    const codes = rejected.map((r) => r.code);
    assert.equal(rejected.length, 8, `one report per refused op: ${JSON.stringify(rejected)}`);
    assert.ok(rejected.every((r) => r.what === "op" && r.code.length > 0 && r.source.length > 0));
    assert.equal(codes.filter((c) => c === "bad_signature").length, 3, codes.join(","));
    assert.equal(codes.filter((c) => c === "truncated").length, 4, codes.join(","));
    assert.equal(codes.filter((c) => c === "not_member").length, 1, codes.join(","));
    assert.ok(rejected.some((r) => r.source === mallory.fp), "the sender is recorded");
    assert.equal(rejectedCount(s.metrics, "bad_signature"), 3);
    assert.equal(rejectedCount(s.metrics, "truncated"), 4);
    assert.match(logs.join("\n"), /WARN \[secrets\] secret op rejected/);
    // Nothing of it was stored, and nothing stored before is gone.
    assert.equal(s.store.ops(team).length, opsBefore);
    assert.equal(s.secrets.log(team).size, opsBefore);
    await assert.rejects(s.secrets.get(chain, "default", "B2"), /not set/);
    await assert.rejects(s.secrets.get(chain, "default", "EVIL"), /not set/);
    assert.equal(await s.secrets.get(chain, "default", "OWN"), "alpha-own");
    assert.equal(await s.secrets.get(chain, "default", "B1"), "bravo-one");

    // 5. The genuine b2 (after its tampered copies), then replays of b2 and b1.
    await s.secrets.receive(team, [b2.record.bytes], bravo.fp);
    assert.equal(s.store.ops(team).length, opsBefore + 1);
    const reported = s.store.rejected(team).length;
    const added = () =>
      s.metrics.render().split("\n").filter((l) => l.startsWith("den_ops_added_total{")).join();
    const addedBefore = added();
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(
        await s.secrets.receive(team, [b2.record.bytes, b1.record.bytes], bravo.fp),
        { gap: false },
      );
    }
    assert.equal(s.store.ops(team).length, opsBefore + 1, "a replay stores nothing");
    assert.equal(s.store.rejected(team).length, reported, "a replay is not an attack report");
    assert.equal(added(), addedBefore, "a replay adds nothing");
    // 6. A tampered copy of a stored op changes nothing either.
    await s.secrets.receive(team, [badSig, flipInBody(b1)], bravo.fp);
    assert.equal(s.store.ops(team).length, opsBefore + 1);
    assert.equal(await s.secrets.get(chain, "default", "B2"), "bravo-two");
    assert.equal(await s.secrets.get(chain, "default", "B1"), "bravo-one");
    const history = s.secrets.history(chain, "default", "B2");
    assert.equal(history.length, 1, "b2 counted once");

    // The stored bytes are the genuine ones, once each; they load again without complaint.
    const stored = s.store.ops(team).filter((o) => o.author === bravo.fp);
    assert.deepEqual(stored.map((o) => o.hash), [b1.hash, b2.hash]);
    assert.deepEqual(stored[1].bytes, b2.record.bytes);
    const reportsBeforeReload = s.store.rejected(team).length;
    assert.equal(s.store.integrityCheck(), "ok");
    s.store.close();
    s = await services(`${dir}/den.db`, alpha, logs);
    const again = s.teams.chain(team)!;
    assert.equal(s.store.rejected(team).length, reportsBeforeReload, "nothing rejected on load");
    assert.equal(await s.secrets.get(again, "default", "OWN"), "alpha-own");
    assert.equal(await s.secrets.get(again, "default", "B1"), "bravo-one");
    assert.equal(await s.secrets.get(again, "default", "B2"), "bravo-two");
    assert.equal(s.store.ops(team).length, opsBefore + 1);
  } finally {
    s.store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("secrets wire: a batch mixing good and bad ops keeps the good ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "den-wire-" });
  const logs: string[] = [];
  const [alpha, bravo] = [await node("alpha"), await node("bravo")];
  const s = await services(`${dir}/den.db`, alpha, logs);
  try {
    const chain = await s.teams.create("acme");
    await addMember(s.teams, chain, bravo);
    const readers = [alpha, bravo].map((n) => recipientOf(n.id.publicKeys));
    const author = { fingerprint: bravo.fp, signing: bravo.id.signing };
    const mk = (seq: number, prev: string | null, key: string) =>
      createOp(author, {
        team: chain.id,
        env: "default",
        seq,
        prev,
        lamport: seq,
        ts: Date.now(),
        changes: [{ key, value: `v-${key}` }],
      }, readers);
    const o1 = await mk(1, null, "X1");
    const o2 = await mk(2, o1.hash, "X2");
    const o3 = await mk(3, o2.hash, "X3");
    // o1 fine, garbage, o2 fine, o3 tampered: o1 and o2 are kept, the rest reported.
    const res = await s.secrets.receive(chain.id, [
      o1.record.bytes,
      new Uint8Array([1, 2, 3]),
      o2.record.bytes,
      flipInBody(o3),
    ], bravo.fp);
    assert.deepEqual(res, { gap: false });
    assert.equal(await s.secrets.get(chain, "default", "X1"), "v-X1");
    assert.equal(await s.secrets.get(chain, "default", "X2"), "v-X2");
    await assert.rejects(s.secrets.get(chain, "default", "X3"), /not set/);
    assert.equal(s.store.rejected(chain.id).length, 2);
    // The genuine o3 still fits on the chain afterwards.
    await s.secrets.receive(chain.id, [o3.record.bytes], bravo.fp);
    assert.equal(await s.secrets.get(chain, "default", "X3"), "v-X3");
    // bravo signing a second, different op at a seq already taken (a fork) is refused.
    const fork = await mk(2, o1.hash, "FORK");
    await s.secrets.receive(chain.id, [fork.record.bytes], bravo.fp);
    assert.equal(s.store.rejected(chain.id).at(-1)?.code, "fork");
    assert.equal(await s.secrets.get(chain, "default", "X2"), "v-X2");
    await assert.rejects(s.secrets.get(chain, "default", "FORK"), /not set/);
    // An op out of order (a gap) is not stored and asks for what comes before.
    const o5 = await mk(5, "ab".repeat(32), "X5");
    assert.deepEqual(await s.secrets.receive(chain.id, [o5.record.bytes], bravo.fp), {
      gap: true,
    });
    assert.equal(s.store.ops(chain.id).length, 3);
  } finally {
    s.store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
