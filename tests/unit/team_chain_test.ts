import assert from "node:assert/strict";
import { fromHex, fromUtf8, toBase64, toHex, utf8 } from "../../src/crypto/encoding.ts";
import { randomBytes } from "../../src/crypto/random.ts";
import { ed25519FromSeed, Ed25519Verifier } from "../../src/crypto/sign.ts";
import { fingerprint } from "../../src/identity/fingerprint.ts";
import { generateIdentity, type Identity, identityFromSeeds } from "../../src/identity/keys.ts";
import {
  type Block,
  createBlock,
  createGenesis,
  memberInfoOf,
  parseBlock,
  signJoinProof,
  TeamError,
} from "../../src/team/block.ts";
import { type AddResult, TeamChain } from "../../src/team/chain.ts";
import { isAdmin, readersOf, requiredApprovals } from "../../src/team/state.ts";
import {
  type BlockBody,
  type BlockContent,
  isEnvName,
  isTeamName,
  joinProofMessage,
  type Role,
} from "../../src/team/types.ts";
import { RecordError, RecordKind, signRecord } from "../../src/wire/signed_record.ts";

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;

interface Person {
  id: Identity;
  fp: string;
  name: string;
}

async function person(name: string): Promise<Person> {
  const id = await generateIdentity(name);
  return { id, fp: fingerprint(id.publicKeys), name };
}

interface Invite {
  proposal: Block;
  key: CryptoKey;
}

/** One peer's view of a team, with helpers that make blocks the way a node would. */
class Team {
  readonly verifier = new Ed25519Verifier();
  #ts = T0;
  constructor(readonly chain: TeamChain) {}

  static async create(admin: Person, name = "ops"): Promise<Team> {
    const g = await createGenesis(admin.id, name, ["192.0.2.1:7834"], T0);
    return new Team(await TeamChain.create(g, new Ed25519Verifier()));
  }

  /** Another peer's copy, synced with everything this one has. */
  async replica(): Promise<Team> {
    const t = new Team(await TeamChain.create(this.chain.genesis, this.verifier));
    const res = await t.chain.add(this.chain.missingFor([t.chain.id]), t.verifier);
    assert.equal(res.rejected.length, 0);
    return t;
  }

  get state() {
    return this.chain.state();
  }

  /** A signed block by `who` on the current heads (or `opts.parents`). */
  make(
    who: Person,
    content: BlockContent,
    opts: { ts?: number; parents?: string[] } = {},
  ): Promise<Block> {
    this.#ts += 1000;
    const body = {
      v: 1,
      team: this.chain.id,
      author: who.fp,
      parents: opts.parents ?? this.chain.parentsForNew(),
      ts: opts.ts ?? this.#ts,
      ...content,
    } as BlockBody;
    return createBlock(who.id.signing, body);
  }

  add(...blocks: Block[]): Promise<AddResult> {
    return this.chain.add(blocks, this.verifier);
  }

  async ok(who: Person, content: BlockContent, opts?: { ts?: number }): Promise<Block> {
    const b = await this.make(who, content, opts);
    const res = await this.add(b);
    assert.deepEqual(res.rejected, [], `${who.name} ${content.type}`);
    assert.deepEqual(res.added.map((x) => x.hash), [b.hash]);
    return b;
  }

  /** Makes a block that must be refused; returns the code. */
  async refused(who: Person, content: BlockContent, opts?: { ts?: number }): Promise<string> {
    const b = await this.make(who, content, opts);
    const res = await this.add(b);
    assert.equal(res.added.length, 0, `${who.name} ${content.type} should be refused`);
    assert.equal(res.rejected.length, 1);
    assert.equal(this.chain.has(b.hash), false);
    return res.rejected[0].code;
  }

  async invite(
    by: Person,
    role: Role = "member",
    envs = ["default"],
    expires = T0 + 24 * HOUR,
  ): Promise<Invite> {
    const kp = await ed25519FromSeed(randomBytes(32));
    const proposal = await this.ok(by, {
      type: "propose",
      proposal: { kind: "invite", role, envs, invite_key: toBase64(kp.publicKey), expires },
    });
    return { proposal, key: kp.privateKey };
  }

  /** The member_added content an admin appends once the newcomer proved the invite key. */
  async joining(newcomer: Person, inv: Invite, signer = inv.key): Promise<BlockContent> {
    return {
      type: "member_added",
      proposal: inv.proposal.hash,
      member: memberInfoOf(newcomer.id, ["198.51.100.7:7834"]),
      invite_sig: await signJoinProof(signer, this.chain.id, inv.proposal.hash, newcomer.fp),
    };
  }

  async join(by: Person, newcomer: Person, role: Role = "member", envs = ["default"]) {
    const inv = await this.invite(by, role, envs);
    if (this.state.proposals.get(inv.proposal.hash)!.state !== "approved") {
      throw new Error("join() needs an invite that one approval settles");
    }
    return this.ok(by, await this.joining(newcomer, inv));
  }

  proposal(b: Block) {
    return this.state.proposals.get(b.hash)!;
  }
}

/** alice (creator), bob and carol, all admins: a majority is 2 of 3. */
async function threeAdmins() {
  const [alice, bob, carol] = await Promise.all(["alice", "bob", "carol"].map(person));
  const t = await Team.create(alice);
  await t.join(alice, bob, "admin");
  const inv = await t.invite(alice, "admin");
  assert.equal(t.proposal(inv.proposal).state, "pending", "two admins: alice alone is not enough");
  await t.ok(bob, { type: "approve", proposal: inv.proposal.hash });
  await t.ok(alice, await t.joining(carol, inv));
  return { t, alice, bob, carol };
}

/** alice (admin) and bob (member, reads "default"). */
async function adminAndMember() {
  const [alice, bob] = await Promise.all([person("alice"), person("bob")]);
  const t = await Team.create(alice);
  await t.join(alice, bob);
  return { t, alice, bob };
}

function sortedFps(...people: Person[]): string[] {
  return people.map((p) => p.fp).sort();
}

Deno.test("team: the vector in docs/TEAMS.md", async () => {
  const doc = await Deno.readTextFile(new URL("../../docs/TEAMS.md", import.meta.url));
  const field = (label: string) => {
    const m = doc.match(new RegExp(`^${label}:\\s+(\\S.*)$`, "m"));
    assert.ok(m, `docs/TEAMS.md has no "${label}:" line`);
    return m[1].trim();
  };
  const seq = (from: number, n: number) => Uint8Array.from({ length: n }, (_, i) => from + i);
  assert.deepEqual(fromHex(field("ed25519 seed")), seq(0, 32));
  assert.deepEqual(fromHex(field("x25519 seed")), seq(32, 32));
  assert.deepEqual(fromHex(field("mlkem seed")), seq(64, 64));
  const alice = await identityFromSeeds(field("member name"), {
    ed25519: fromHex(field("ed25519 seed")),
    x25519: fromHex(field("x25519 seed")),
    mlkem: fromHex(field("mlkem seed")),
  });
  assert.equal(fingerprint(alice.publicKeys), field("fingerprint"));
  const g = await createGenesis(
    alice,
    field("team name"),
    [field("address")],
    Number(field("ts")),
  );
  assert.equal(fromUtf8(g.record.body), field("body"));
  assert.equal(toHex(g.record.bytes.subarray(0, 6)), field("header"));
  assert.equal(toHex(g.record.signature), field("signature"));
  assert.equal(g.hash, field("team id"));
  const chain = await TeamChain.create(parseBlock(g.record.bytes), new Ed25519Verifier());
  assert.equal(chain.id, field("team id"));
});

Deno.test("team: genesis makes its creator the only admin; the team id is its hash", async () => {
  const [alice, bob] = await Promise.all([person("alice"), person("bob")]);
  const g = await createGenesis(alice.id, "ops", ["192.0.2.1:7834"], T0);
  assert.deepEqual(parseBlock(g.record.bytes), g, "decoding gives back the same block");
  const chain = await TeamChain.create(g, new Ed25519Verifier());
  assert.equal(chain.id, g.hash);
  assert.match(chain.id, /^[0-9a-f]{64}$/);
  assert.deepEqual(chain.heads(), [chain.id]);
  assert.equal(chain.size, 1);
  const s = chain.state();
  assert.equal(s.id, chain.id);
  assert.equal(s.name, "ops");
  assert.deepEqual(s.policy, { type: "majority" });
  assert.deepEqual([...s.members.keys()], [alice.fp]);
  const me = s.members.get(alice.fp)!;
  assert.equal(me.role, "admin");
  assert.deepEqual(me.addresses, ["192.0.2.1:7834"]);
  assert.equal(me.added_by, null);
  assert.equal(requiredApprovals(s), 1);
  assert.equal(s.log[0].summary, 'alice created the team "ops"');

  // Another genesis (another ts) is another team.
  const other = await createGenesis(alice.id, "ops", [], T0 + 1);
  assert.notEqual(other.hash, g.hash);
  // A genesis must be signed by the member it names.
  const forged = await createBlock(bob.id.signing, g.body);
  await assert.rejects(
    TeamChain.create(forged, new Ed25519Verifier()),
    (e) => e instanceof TeamError && e.code === "bad_signature",
  );
  const wrongAuthor = await createBlock(bob.id.signing, { ...g.body, author: bob.fp });
  await assert.rejects(
    TeamChain.create(wrongAuthor, new Ed25519Verifier()),
    (e) => e instanceof TeamError && e.code === "bad_author",
  );
});

Deno.test("team: a lone admin's invite is approved at once and the invitee joins", async () => {
  const [alice, bob] = await Promise.all([person("alice"), person("bob")]);
  const t = await Team.create(alice);
  const inv = await t.invite(alice, "member", ["default", "staging"]);
  const p = t.proposal(inv.proposal);
  assert.equal(p.state, "approved");
  assert.deepEqual(p.approvals, [alice.fp], "the proposer's own approval counts");
  assert.equal(p.decided, inv.proposal.body.ts);
  assert.match(
    t.state.log.at(-1)!.summary,
    /^alice proposed inviting a member \(envs: default, staging\); invite [0-9a-f]{8} approved$/,
  );

  const added = await t.ok(alice, await t.joining(bob, inv));
  const s = t.state;
  assert.equal(s.members.size, 2);
  const b = s.members.get(bob.fp)!;
  assert.equal(b.name, "bob");
  assert.equal(b.role, "member");
  assert.deepEqual(b.envs, ["default", "staging"]);
  assert.equal(b.via, inv.proposal.hash);
  assert.equal(b.added_by, alice.fp);
  assert.equal(b.joined, added.body.ts);
  assert.deepEqual(b.addresses, ["198.51.100.7:7834"]);
  assert.equal(s.proposals.get(inv.proposal.hash)!.state, "used");
  assert.equal(isAdmin(s, bob.fp), false);
  assert.equal(isAdmin(s, alice.fp), true);
  // The new member can write blocks of their own.
  await t.ok(bob, { type: "addresses", addresses: ["198.51.100.8:7834"] });
  assert.deepEqual(t.state.members.get(bob.fp)!.addresses, ["198.51.100.8:7834"]);
});

Deno.test("team: with three admins a proposal takes a second approval", async () => {
  const { t, alice, bob, carol } = await threeAdmins();
  assert.deepEqual([...t.state.members.keys()].sort(), sortedFps(alice, bob, carol));
  assert.equal(requiredApprovals(t.state), 2);

  const inv = await t.invite(alice);
  assert.equal(t.proposal(inv.proposal).state, "pending");
  assert.equal(
    await t.refused(alice, { type: "approve", proposal: inv.proposal.hash }),
    "already_voted",
    "the proposer already approved it",
  );
  const dave = await person("dave");
  assert.equal(await t.refused(alice, await t.joining(dave, inv)), "not_approved");

  await t.ok(bob, { type: "approve", proposal: inv.proposal.hash });
  const p = t.proposal(inv.proposal);
  assert.equal(p.state, "approved");
  assert.deepEqual(p.approvals, [alice.fp, bob.fp]);
  assert.equal(
    await t.refused(carol, { type: "approve", proposal: inv.proposal.hash }),
    "not_pending",
  );
  await t.ok(carol, await t.joining(dave, inv));
  assert.equal(t.state.members.get(dave.fp)!.added_by, carol.fp);
});

Deno.test("team: rejections settle a proposal once it can no longer pass", async () => {
  const { t, alice, bob, carol } = await threeAdmins();
  const inv = await t.invite(alice);
  await t.ok(bob, { type: "reject", proposal: inv.proposal.hash });
  // 3 admins, 2 required: one rejection still leaves alice + carol.
  assert.equal(t.proposal(inv.proposal).state, "pending");
  assert.equal(
    await t.refused(bob, { type: "approve", proposal: inv.proposal.hash }),
    "already_voted",
    "one vote per admin",
  );
  await t.ok(carol, { type: "reject", proposal: inv.proposal.hash });
  const p = t.proposal(inv.proposal);
  assert.equal(p.state, "rejected");
  assert.deepEqual(p.rejections, [bob.fp, carol.fp]);
  assert.match(t.state.log.at(-1)!.summary, /rejected$/);
  const dave = await person("dave");
  assert.equal(await t.refused(alice, await t.joining(dave, inv)), "not_approved");
  assert.equal(
    await t.refused(alice, { type: "reject", proposal: "ab".repeat(32) }),
    "unknown_proposal",
  );
});

Deno.test("team: a removed member leaves the team and their later blocks are refused", async () => {
  const { t, alice, bob } = await adminAndMember();
  const rm = await t.ok(alice, { type: "propose", proposal: { kind: "remove", member: bob.fp } });
  const s = t.state;
  assert.equal(s.members.has(bob.fp), false);
  const gone = s.former.get(bob.fp)!;
  assert.equal(gone.reason, "removed");
  assert.equal(gone.by, rm.hash);
  assert.equal(gone.left, rm.body.ts);
  assert.deepEqual(readersOf(s, "default").map((m) => m.name), ["alice"]);
  assert.equal(
    await t.refused(bob, { type: "addresses", addresses: ["203.0.113.1:7834"] }),
    "removed_member",
  );
  // A removed member can be invited back.
  await t.join(alice, bob);
  assert.equal(t.state.members.has(bob.fp), true);
  assert.equal(t.state.former.has(bob.fp), false);
});

Deno.test("team: a removed admin's votes stop counting", async () => {
  const { t, alice, bob, carol } = await threeAdmins();
  const inv = await t.invite(bob); // pending with bob's approval
  const rm = await t.ok(alice, { type: "propose", proposal: { kind: "remove", member: bob.fp } });
  await t.ok(carol, { type: "approve", proposal: rm.hash });
  assert.equal(t.state.former.get(bob.fp)?.reason, "removed");
  assert.equal(requiredApprovals(t.state), 2, "two admins left: both must approve");
  await t.ok(carol, { type: "approve", proposal: inv.proposal.hash });
  assert.equal(t.proposal(inv.proposal).state, "pending", "bob's approval no longer counts");
  await t.ok(alice, { type: "approve", proposal: inv.proposal.hash });
  assert.equal(t.proposal(inv.proposal).state, "approved");
  assert.equal(
    await t.refused(bob, { type: "approve", proposal: inv.proposal.hash }),
    "removed_member",
  );
});

Deno.test("team: concurrent blocks converge to one order and one state everywhere", async () => {
  const [alice, bob, carol] = await Promise.all(["alice", "bob", "carol"].map(person));
  const a = await Team.create(alice);
  await a.join(alice, bob, "admin");
  const inv = await a.invite(alice);
  await a.ok(bob, { type: "approve", proposal: inv.proposal.hash });
  await a.ok(alice, await a.joining(carol, inv));
  const b = await a.replica();
  assert.deepEqual(b.chain.heads(), a.chain.heads());

  // Both admins act on the same heads without seeing each other; both grant carol "staging".
  const a1 = await a.make(alice, { type: "grant", member: carol.fp, env: "staging" });
  const a2 = await a.make(alice, { type: "addresses", addresses: ["192.0.2.2:7834"] });
  const b1 = await b.make(bob, { type: "grant", member: carol.fp, env: "staging" });
  const b2 = await b.make(bob, { type: "propose", proposal: { kind: "remove", member: carol.fp } });
  assert.deepEqual(a2.body.parents, a1.body.parents, "made on the same heads");
  assert.deepEqual(b1.body.parents, a1.body.parents);

  // Each peer gets its own blocks first, then the other's.
  for (const [t, first, second] of [[a, [a1, a2], [b1, b2]], [b, [b1, b2], [a1, a2]]] as const) {
    for (const batch of [first, second]) {
      const res = await t.add(...batch);
      assert.deepEqual(res.rejected, [], "valid where their authors made them: accepted");
      assert.equal(res.added.length, 2);
    }
  }
  const hashes = (t: Team) => t.chain.ordered().map((x) => x.hash);
  assert.deepEqual(hashes(a), hashes(b));
  assert.deepEqual(a.chain.heads(), b.chain.heads());
  assert.equal(a.chain.heads().length, 4);
  assert.deepEqual(a.state, b.state);

  // The second grant in fold order is the one skipped, on both peers.
  const grants = [a1.hash, b1.hash].sort();
  const skipped = a.state.log.filter((e) => e.rejected !== null);
  assert.deepEqual(skipped.map((e) => [e.hash, e.rejected]), [[grants[1], "already_granted"]]);
  assert.deepEqual(a.state.members.get(carol.fp)!.envs, ["default", "staging"]);
  assert.equal(a.state.members.get(alice.fp)!.addresses[0], "192.0.2.2:7834");
  assert.equal(a.state.proposals.get(b2.hash)!.state, "pending");

  // The next block on either side merges every head.
  const merge = await a.make(alice, { type: "approve", proposal: b2.hash });
  assert.equal(merge.body.parents.length, 4);
  for (const t of [a, b]) {
    assert.equal((await t.add(merge)).added.length, 1);
    assert.deepEqual(t.chain.heads(), [merge.hash]);
    assert.equal(t.state.former.get(carol.fp)?.reason, "removed");
  }
  assert.deepEqual(a.state, b.state);
});

Deno.test("team: a removal and a concurrent block by the removed member converge", async () => {
  const [alice, bob, carol] = await Promise.all(["alice", "bob", "carol"].map(person));
  const a = await Team.create(alice);
  await a.join(alice, bob);
  await a.join(alice, carol);
  const b = await a.replica();
  const rm = await a.make(alice, { type: "propose", proposal: { kind: "remove", member: bob.fp } });
  const late = await b.make(bob, { type: "member_left" });
  const grant = await b.make(alice, { type: "grant", member: bob.fp, env: "prod" });
  await a.add(rm);
  await b.add(late, grant);
  assert.equal((await a.add(late, grant)).added.length, 2);
  assert.equal((await b.add(rm)).added.length, 1);
  assert.deepEqual(a.chain.ordered().map((x) => x.hash), b.chain.ordered().map((x) => x.hash));
  assert.deepEqual(a.state, b.state);
  assert.equal(a.chain.size, b.chain.size, "both peers keep all three blocks");
  // Same height: the hashes decide whether bob left before or after the removal.
  const order = a.chain.ordered().map((x) => x.hash);
  const first = order.indexOf(rm.hash) < order.indexOf(late.hash) ? "removed" : "left";
  assert.equal(a.state.members.has(bob.fp), false, "bob is out either way");
  assert.equal(a.state.former.get(bob.fp)!.reason, first);
  assert.deepEqual(
    readersOf(a.state, "prod").map((m) => m.name),
    ["alice"],
    "whatever the grant did",
  );
});

Deno.test("team: tampered or truncated blocks are refused", async () => {
  const { t, alice, bob } = await adminAndMember();
  const good = await t.make(alice, { type: "addresses", addresses: ["192.0.2.9:7834"] });

  // One body byte changed: still a well-formed block, but not what alice signed.
  const at = fromUtf8(good.record.body).indexOf("192.0.2.9") + 8;
  const bytes = good.record.bytes.slice();
  bytes[6 + at] = "8".charCodeAt(0);
  const changed = parseBlock(bytes);
  assert.deepEqual((changed.body as { addresses: string[] }).addresses, ["192.0.2.8:7834"]);
  let res = await t.add(changed);
  assert.deepEqual(res.rejected.map((r) => r.code), ["bad_signature"]);
  assert.equal(t.chain.has(changed.hash), false);

  // A changed signature: same hash as the real block, which must still get in afterwards.
  const badSig = good.record.bytes.slice();
  badSig[badSig.length - 1] ^= 1;
  res = await t.add(parseBlock(badSig));
  assert.deepEqual(res.rejected.map((r) => [r.hash, r.code]), [[good.hash, "bad_signature"]]);
  res = await t.add(good);
  assert.deepEqual(res.added.map((b) => b.hash), [good.hash]);

  // Truncated bytes do not decode at all.
  assert.throws(
    () => parseBlock(good.record.bytes.subarray(0, good.record.bytes.length - 1)),
    (e) => e instanceof RecordError && e.code === "truncated",
  );
  res = await t.add({ ...good, record: { ...good.record, bytes: good.record.bytes.slice(0, 40) } });
  assert.deepEqual(res.rejected.map((r) => r.code), ["truncated"]);

  // A block that is refused takes its children with it.
  const notAdmin = await t.make(bob, { type: "grant", member: bob.fp, env: "prod" });
  const child = await t.make(alice, { type: "member_left" }, {
    parents: [notAdmin.hash, ...t.chain.heads()].sort(),
  });
  res = await t.add(notAdmin, child);
  assert.deepEqual(res.rejected.map((r) => r.code), ["not_admin", "bad_parent"]);
  assert.deepEqual(res.added, []);
  // And a block signed by someone the team never heard of.
  const stranger = await person("mallory");
  assert.equal(
    await t.refused(stranger, { type: "addresses", addresses: [] }),
    "not_member",
  );
});

Deno.test("team: a block of another team is refused", async () => {
  const alice = await person("alice");
  const t = await Team.create(alice, "ops");
  const other = await Team.create(alice, "web");
  assert.notEqual(other.chain.id, t.chain.id);
  const b = await other.make(alice, { type: "addresses", addresses: [] });
  const res = await t.add(b, other.chain.genesis);
  assert.deepEqual(res.rejected.map((r) => r.code), ["wrong_team", "wrong_team"]);
  assert.equal(t.chain.size, 1);
  // The team's own genesis again is just a duplicate.
  assert.deepEqual(await t.add(t.chain.genesis), { added: [], rejected: [], missing: [] });
});

Deno.test("team: blocks with unknown parents wait until the parents arrive", async () => {
  const [alice, bob] = await Promise.all([person("alice"), person("bob")]);
  const src = await Team.create(alice);
  const inv = await src.invite(alice);
  const joined = await src.ok(alice, await src.joining(bob, inv));
  const moved = await src.ok(bob, { type: "addresses", addresses: ["203.0.113.5:7834"] });

  const dst = new Team(await TeamChain.create(src.chain.genesis, new Ed25519Verifier()));
  let res = await dst.add(moved);
  assert.deepEqual(res, { added: [], rejected: [], missing: [joined.hash] });
  res = await dst.add(joined);
  assert.deepEqual(res.missing, [inv.proposal.hash], "asks for what the held blocks still lack");
  assert.equal(dst.chain.size, 1);
  res = await dst.add(inv.proposal);
  assert.deepEqual(res.added.map((b) => b.hash), [inv.proposal.hash, joined.hash, moved.hash]);
  assert.deepEqual(res.missing, []);
  assert.deepEqual(dst.state.members.get(bob.fp)!.addresses, ["203.0.113.5:7834"]);
  assert.deepEqual(dst.state, src.state);

  // Out of order within one call works too.
  const dst2 = new Team(await TeamChain.create(src.chain.genesis, new Ed25519Verifier()));
  res = await dst2.add(moved, joined, inv.proposal);
  assert.equal(res.added.length, 3);
  assert.deepEqual(dst2.chain.ordered(), src.chain.ordered());
});

Deno.test("team: missingFor lists what a peer with given heads lacks, in fold order", async () => {
  const { t, alice, bob } = await adminAndMember();
  const all = t.chain.ordered();
  const fork = t.chain.heads();
  const x = await t.ok(alice, { type: "grant", member: bob.fp, env: "prod" });
  const y = await t.make(bob, { type: "addresses", addresses: [] }, { parents: fork });
  await t.add(y);
  const z = await t.ok(alice, { type: "addresses", addresses: ["192.0.2.3:7834"] });
  const hashes = (bs: Block[]) => bs.map((b) => b.hash);
  const ordered = hashes(t.chain.ordered());

  assert.deepEqual(hashes(t.chain.missingFor([])), ordered, "a new peer needs everything");
  assert.deepEqual(t.chain.missingFor(t.chain.heads()), []);
  assert.deepEqual(hashes(t.chain.missingFor(fork)), ordered.slice(all.length));
  assert.deepEqual(
    hashes(t.chain.missingFor([x.hash])).sort(),
    [y.hash, z.hash].sort(),
    "y is not an ancestor of x",
  );
  assert.deepEqual(hashes(t.chain.missingFor([x.hash, y.hash])), [z.hash]);
  assert.deepEqual(
    hashes(t.chain.missingFor(["00".repeat(32), y.hash])),
    hashes(t.chain.missingFor([y.hash])),
    "unknown hashes are ignored",
  );
});

Deno.test("team: an invite works once, before it expires, and only with its key", async () => {
  const [alice, bob, carol, dave] = await Promise.all(
    ["alice", "bob", "carol", "dave"].map(person),
  );
  const t = await Team.create(alice);
  const inv = await t.invite(alice);
  await t.ok(alice, await t.joining(bob, inv));
  assert.equal(await t.refused(alice, await t.joining(carol, inv)), "invite_used");

  const again = await t.invite(alice);
  assert.equal(await t.refused(alice, await t.joining(bob, again)), "duplicate_member");

  const short = await t.invite(alice, "member", ["default"], T0 + 10 * HOUR);
  assert.equal(
    await t.refused(alice, await t.joining(carol, short), { ts: T0 + 10 * HOUR + 1 }),
    "invite_expired",
  );
  await t.ok(alice, await t.joining(carol, short), { ts: T0 + 10 * HOUR });

  const wrongKey = (await ed25519FromSeed(randomBytes(32))).privateKey;
  assert.equal(await t.refused(alice, await t.joining(dave, again, wrongKey)), "bad_invite_sig");
  // A proof made for someone else does not let dave in.
  const carolsProof = await signJoinProof(again.key, t.chain.id, again.proposal.hash, carol.fp);
  const daveWithCarolsProof = { ...(await t.joining(dave, again)), invite_sig: carolsProof };
  assert.equal(await t.refused(alice, daveWithCarolsProof), "bad_invite_sig");
  await t.ok(alice, await t.joining(dave, again));
  assert.equal(t.state.members.size, 4);

  // An invite that expires before it is made is refused outright.
  const kp = await ed25519FromSeed(randomBytes(32));
  assert.equal(
    await t.refused(alice, {
      type: "propose",
      proposal: {
        kind: "invite",
        role: "member",
        envs: [],
        invite_key: toBase64(kp.publicKey),
        expires: T0,
      },
    }),
    "invite_expired",
  );
  // The proof binds team, proposal and fingerprint, in that order.
  const msg = joinProofMessage(t.chain.id, again.proposal.hash, dave.fp);
  assert.equal(toHex(msg.subarray(0, 12)), toHex(utf8("den-join-v1\0")));
  assert.equal(msg.length, 12 + 32 + 32 + 52);
});

Deno.test("team: the last admin cannot leave while others remain", async () => {
  const { t, alice, bob } = await adminAndMember();
  assert.equal(await t.refused(alice, { type: "member_left" }), "last_admin");
  assert.equal(
    await t.refused(alice, { type: "propose", proposal: { kind: "remove", member: alice.fp } }),
    "last_admin",
  );
  assert.equal(
    await t.refused(alice, {
      type: "propose",
      proposal: { kind: "role", member: alice.fp, role: "member" },
    }),
    "last_admin",
  );
  await t.ok(bob, { type: "member_left" });
  const gone = t.state.former.get(bob.fp)!;
  assert.equal(gone.reason, "left");
  assert.equal(gone.by, null);
  assert.equal(t.state.log.at(-1)!.summary, "bob left the team");
  await t.ok(alice, { type: "member_left" });
  assert.equal(t.state.members.size, 0, "the last one out closes the team");
});

Deno.test("team: grant and revoke decide who reads an environment", async () => {
  const { t, alice, bob } = await adminAndMember();
  const names = (env: string) => readersOf(t.state, env).map((m) => m.fingerprint);
  assert.deepEqual(names("default"), sortedFps(alice, bob));
  assert.deepEqual(names("prod"), [alice.fp], "admins read every environment");

  await t.ok(alice, { type: "grant", member: bob.fp, env: "prod" });
  assert.deepEqual(names("prod"), sortedFps(alice, bob));
  assert.deepEqual(t.state.members.get(bob.fp)!.envs, ["default", "prod"]);
  assert.match(t.state.log.at(-1)!.summary, /^alice granted bob read access to "prod"$/);
  assert.equal(
    await t.refused(alice, { type: "grant", member: bob.fp, env: "prod" }),
    "already_granted",
  );
  assert.equal(
    await t.refused(bob, { type: "grant", member: bob.fp, env: "staging" }),
    "not_admin",
  );
  const stranger = await person("eve");
  assert.equal(
    await t.refused(alice, { type: "grant", member: stranger.fp, env: "prod" }),
    "not_member",
  );

  await t.ok(alice, { type: "revoke", member: bob.fp, env: "prod" });
  assert.deepEqual(names("prod"), [alice.fp]);
  assert.equal(
    await t.refused(alice, { type: "revoke", member: bob.fp, env: "prod" }),
    "not_granted",
  );
  await t.ok(alice, { type: "revoke", member: bob.fp, env: "default" });
  assert.deepEqual(names("default"), [alice.fp]);
});

Deno.test("team: a policy of count 1 lets one admin decide", async () => {
  const { t, alice, bob, carol } = await threeAdmins();
  const pol = await t.ok(alice, {
    type: "propose",
    proposal: { kind: "policy", policy: { type: "count", n: 1 } },
  });
  assert.equal(t.proposal(pol).state, "pending");
  assert.deepEqual(t.state.policy, { type: "majority" });
  await t.ok(bob, { type: "approve", proposal: pol.hash });
  assert.deepEqual(t.state.policy, { type: "count", n: 1 });
  assert.equal(requiredApprovals(t.state), 1);

  const rm = await t.ok(carol, { type: "propose", proposal: { kind: "remove", member: bob.fp } });
  assert.equal(t.proposal(rm).state, "approved", "carol alone removes bob now");
  assert.equal(t.state.former.get(bob.fp)?.by, rm.hash);
  assert.deepEqual([...t.state.members.keys()].sort(), sortedFps(alice, carol));

  // count n is capped by the number of admins, and at least 1.
  assert.equal(requiredApprovals({ ...t.state, policy: { type: "count", n: 5 } }), 2);
});

Deno.test("team: a role change makes a member an admin", async () => {
  const { t, alice, bob } = await adminAndMember();
  assert.equal(
    await t.refused(bob, {
      type: "propose",
      proposal: { kind: "role", member: alice.fp, role: "member" },
    }),
    "not_admin",
  );
  assert.equal(
    await t.refused(alice, {
      type: "propose",
      proposal: { kind: "role", member: bob.fp, role: "member" },
    }),
    "same_role",
  );
  await t.ok(alice, { type: "propose", proposal: { kind: "role", member: bob.fp, role: "admin" } });
  assert.equal(isAdmin(t.state, bob.fp), true);
  assert.match(t.state.log.at(-1)!.summary, /bob is now an admin$/);
  assert.deepEqual(readersOf(t.state, "prod").map((m) => m.name).sort(), ["alice", "bob"]);
  assert.equal(requiredApprovals(t.state), 2);
  // bob can now propose; with two admins it waits for alice.
  const demote = await t.ok(bob, {
    type: "propose",
    proposal: { kind: "role", member: alice.fp, role: "member" },
  });
  assert.equal(t.proposal(demote).state, "pending");
  await t.ok(alice, { type: "approve", proposal: demote.hash });
  assert.equal(t.state.members.get(alice.fp)!.role, "member");
});

Deno.test("team: restore rebuilds the same chain from stored blocks in any order", async () => {
  const { t, alice, bob } = await threeAdmins();
  await t.ok(alice, { type: "grant", member: bob.fp, env: "prod" });
  const stored = t.chain.ordered().slice(1).reverse();
  const r = TeamChain.restore(t.chain.genesis, stored);
  assert.equal(r.id, t.chain.id);
  assert.deepEqual(r.ordered().map((b) => b.hash), t.chain.ordered().map((b) => b.hash));
  assert.deepEqual(r.heads(), t.chain.heads());
  assert.deepEqual(r.state(), t.state);
  // And it keeps going.
  const next = await t.make(bob, { type: "member_left" });
  assert.equal((await r.add([next], new Ed25519Verifier())).added.length, 1);
  assert.throws(
    () => TeamChain.restore(stored[0], []),
    (e) => e instanceof TeamError && e.code === "not_genesis",
  );
});

Deno.test("team: block bodies are validated strictly", async () => {
  const alice = await person("alice");
  const t = await Team.create(alice);
  const base = {
    v: 1,
    team: t.chain.id,
    author: alice.fp,
    parents: t.chain.heads(),
    ts: T0 + 1,
  };
  const bad: [string, Record<string, unknown>][] = [
    ["unknown type", { ...base, type: "coup" }],
    ["extra field", { ...base, type: "member_left", note: "hi" }],
    ["wrong version", { ...base, v: 2, type: "member_left" }],
    ["no parents", { ...base, parents: [], type: "member_left" }],
    ["unsorted parents", {
      ...base,
      parents: ["ff".repeat(32), "00".repeat(32)],
      type: "member_left",
    }],
    ["too many parents", {
      ...base,
      parents: Array.from({ length: 17 }, (_, i) => i.toString(16).padStart(64, "0")),
      type: "member_left",
    }],
    ["fractional ts", { ...base, ts: 1.5, type: "member_left" }],
    ["negative ts", { ...base, ts: -1, type: "member_left" }],
    ["author not a fingerprint", { ...base, author: "alice", type: "member_left" }],
    ["bad env name", { ...base, type: "grant", member: alice.fp, env: "-prod" }],
    ["env not a string", { ...base, type: "grant", member: alice.fp, env: 7 }],
    ["too many addresses", { ...base, type: "addresses", addresses: Array(9).fill("a:1") }],
    ["address too long", { ...base, type: "addresses", addresses: ["a".repeat(256)] }],
    ["address with spaces", { ...base, type: "addresses", addresses: ["a b:1"] }],
    ["count 0", {
      ...base,
      type: "propose",
      proposal: { kind: "policy", policy: { type: "count", n: 0 } },
    }],
    ["count 101", {
      ...base,
      type: "propose",
      proposal: { kind: "policy", policy: { type: "count", n: 101 } },
    }],
    ["too many envs", {
      ...base,
      type: "propose",
      proposal: {
        kind: "invite",
        role: "member",
        envs: Array.from({ length: 33 }, (_, i) => `e${i}`),
        invite_key: toBase64(new Uint8Array(32)),
        expires: T0 + HOUR,
      },
    }],
    ["short invite key", {
      ...base,
      type: "propose",
      proposal: {
        kind: "invite",
        role: "member",
        envs: [],
        invite_key: toBase64(new Uint8Array(31)),
        expires: T0 + HOUR,
      },
    }],
    ["unknown role", {
      ...base,
      type: "propose",
      proposal: { kind: "role", member: alice.fp, role: "owner" },
    }],
    ["genesis with a team", {
      ...t.chain.genesis.body,
      team: t.chain.id,
    }],
  ];
  const member = memberInfoOf(alice.id, []);
  const added = (m: unknown) => ({
    ...base,
    type: "member_added",
    proposal: "ab".repeat(32),
    member: m,
    invite_sig: toBase64(new Uint8Array(64)),
  });
  bad.push(
    ["fingerprint of other keys", added({ ...member, fingerprint: (await person("x")).fp })],
    ["name with a newline", added({ ...member, name: "al\nice" })],
    ["name too long", added({ ...member, name: "a".repeat(65) })],
    [
      "key not base64",
      added({ ...member, keys: { ...member.keys, x25519: "!" + member.keys.x25519.slice(1) } }),
    ],
    [
      "key with stray bits",
      added({
        ...member,
        keys: { ...member.keys, ed25519: member.keys.ed25519.slice(0, 42) + "B=" },
      }),
    ],
  );
  for (const [what, body] of bad) {
    const rec = await signRecord(RecordKind.teamBlock, body, alice.id.signing);
    assert.throws(
      () => parseBlock(rec.bytes),
      (e) => e instanceof TeamError && e.code === "malformed",
      what,
    );
    await assert.rejects(
      createBlock(alice.id.signing, body as unknown as BlockBody),
      (e) => e instanceof TeamError && e.code === "malformed",
      what,
    );
  }
  const json = await signRecord(RecordKind.teamBlock, [1, 2], alice.id.signing);
  assert.throws(() => parseBlock(json.bytes), (e) => e instanceof RecordError);

  // The good version of the same shapes passes, and the field order is fixed.
  const ok = await createBlock(alice.id.signing, {
    ts: T0 + 1,
    type: "grant",
    env: "prod.eu-1",
    member: alice.fp,
    v: 1,
    team: t.chain.id,
    author: alice.fp,
    parents: t.chain.heads(),
  } as BlockBody);
  assert.match(fromUtf8(ok.record.body), /^\{"v":1,"team":.*,"type":"grant","member":.*,"env":/);

  assert.equal(isTeamName("ops"), true);
  assert.equal(isTeamName("a".repeat(32)), true);
  for (const n of ["", "Ops", "-ops", "a".repeat(33), "o ps", 5]) {
    assert.equal(isTeamName(n), false);
  }
  for (const n of ["default", "Prod", "prod.eu-1", "a_b", "9"]) assert.equal(isEnvName(n), true);
  for (const n of ["", ".env", "a/b", "a".repeat(33), "a b", null]) {
    assert.equal(isEnvName(n), false);
  }
});
