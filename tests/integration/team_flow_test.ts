/**
 * Teams and shared secrets end to end: real daemons (child processes, one --home each) on
 * loopback, driven through the CLI. Invites with multi-signature approval, joins (direct and
 * through a relay), propagation of values, per-environment read access, refused invite codes,
 * removal and leaving (DESIGN.md §2, §5).
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { freePort, startRelay, waitFor } from "../../scripts/lib/den_process.ts";
import { readKeystore } from "../../src/identity/keystore.ts";
import { callDaemon } from "../../src/ipc/client.ts";
import { decodeInvite, encodeInvite } from "../../src/team/invite_code.ts";
import { sleep, TeamCluster } from "../support/team_cluster.ts";

const TEAM = "acme";

/** `den env get KEY --team acme` on `node`: the value, or null if it fails. */
async function tryGet(c: TeamCluster, node: string, key: string, env = "default") {
  const r = await c.run(node, "env", "get", key, "--team", TEAM, "--env", env);
  return r.code === 0 ? r.stdout : null;
}

/** The value as the daemon of `node` has it now, read over its control socket (no process). */
async function getViaSocket(c: TeamCluster, node: string, key: string): Promise<string | null> {
  try {
    const r = await callDaemon(`${c.home(node)}/den.sock`, "env.get", { team: TEAM, key });
    return (r as { value: string }).value;
  } catch {
    return null;
  }
}

/** A team of `admin` plus `others` joined as members reading `envs` (one admin: no approvals). */
async function smallTeam(c: TeamCluster, admin: string, others: string[], envs = "default") {
  await Promise.all([admin, ...others].map((n) => c.add(n)));
  await c.ok(admin, "team", "create", TEAM);
  for (const n of others) {
    const inv = await c.invite(admin, TEAM, "--env", envs);
    assert.ok(inv.code, `a single admin's invite has a code at once: ${JSON.stringify(inv)}`);
    await c.join(n, inv.code);
  }
  const roles = Object.fromEntries([[admin, "admin"], ...others.map((n) => [n, "member"])]);
  await c.waitMembers([admin, ...others], TEAM, roles);
}

Deno.test({
  name: "team: seed flow with multi-signature invites; a newcomer receives everything",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await TeamCluster.with("team-seed", async (c) => {
      await Promise.all(["a", "b", "c", "d"].map((n) => c.add(n)));
      const created = await c.json<{ name: string; id: string }>("a", "team", "create", TEAM);
      assert.equal(created.name, TEAM);
      assert.match(created.id, /^[0-9a-f]{64}$/);

      // One admin: the invite is approved by its proposer alone and the code is printed at once.
      const toB = await c.invite("a", TEAM, "--role", "admin");
      assert.equal(toB.state, "approved");
      assert.equal(toB.required, 1);
      assert.equal(typeof toB.code, "string");
      assert.match(toB.code!, /^den1/);
      await c.join("b", toB.code!);
      await c.waitMembers(["a", "b"], TEAM, { a: "admin", b: "admin" });

      // Two admins: a majority is 2, so the invite waits for b.
      const toC = await c.invite("a", TEAM, "--role", "admin");
      assert.equal(toC.state, "pending");
      assert.equal(toC.approvals, 1);
      assert.equal(toC.required, 2);
      assert.equal(toC.code, null);
      assert.equal(toC.proposal, toC.id);
      await waitFor(
        "b sees the proposal",
        async () =>
          (await c.proposals("b")).some((p) =>
            p.id === toC.id && p.state === "pending" && p.kind === "invite" &&
            p.approvals === 1 && p.required === 2
          ),
        5000,
      );
      // b is not the inviter: it never sees a code.
      assert.ok((await c.proposals("b")).every((p) => !p.code));
      const approved = await c.json<{ state: string }>("b", "approve", toC.id);
      assert.equal(approved.state, "approved");
      let codeC: string | null = null;
      await waitFor("a's proposals show the approved code", async () => {
        codeC = await c.codeOf("a", toC.id);
        return codeC !== null;
      }, 5000);
      const approvedOnA = (await c.proposals("a", TEAM)).find((p) => p.id === toC.id)!;
      assert.equal(approvedOnA.state, "approved");
      assert.equal(approvedOnA.approvals, 2);
      await c.join("c", codeC!);
      await c.waitMembers(["a", "b", "c"], TEAM, { a: "admin", b: "admin", c: "admin" });

      // A value set before d exists must reach d once it joins.
      await c.ok("a", "env", "set", "SEEDED=before-d-joined", "--team", TEAM);

      // Three admins: a majority is still 2.
      const toD = await c.invite("a", TEAM, "--role", "member", "--env", "default");
      assert.equal(toD.state, "pending");
      assert.equal(toD.required, 2);
      assert.equal(toD.code, null);
      await waitFor(
        "b sees d's invite",
        async () => (await c.proposals("b", TEAM)).some((p) => p.id === toD.id),
        5000,
      );
      const approvedD = await c.json<{ state: string; approvals: number }>(
        "b",
        "approve",
        toD.id.slice(0, 12),
      );
      assert.equal(approvedD.state, "approved");
      assert.equal(approvedD.approvals, 2);
      let codeD: string | null = null;
      await waitFor("a's code for d", async () => {
        codeD = await c.codeOf("a", toD.id);
        return codeD !== null;
      }, 5000);
      await c.join("d", codeD!);

      const all = { a: "admin", b: "admin", c: "admin", d: "member" };
      await c.waitMembers(["a", "b", "c", "d"], TEAM, all);
      const onD = await c.members("d", TEAM);
      assert.equal(onD.length, 4);
      assert.deepEqual(onD.find((m) => m.name === "d")?.envs, ["default"]);
      assert.equal(onD.find((m) => m.name === "d")?.you, true);
      for (const n of ["a", "b", "c"]) {
        assert.equal(onD.find((m) => m.name === n)?.fingerprint, c.fp(n));
      }

      await waitFor(
        "d reads the value set before it joined",
        async () => (await tryGet(c, "d", "SEEDED")) !== null,
        10_000,
      );
      assert.equal(await c.ok("d", "env", "get", "SEEDED", "--team", TEAM), "before-d-joined\n");
      // The code was single-use: the invite is used now, and its code is gone.
      const used = (await c.proposals("a", TEAM)).find((p) => p.id === toD.id)!;
      assert.equal(used.state, "used");
      assert.equal(used.code ?? null, null);
    });
  },
});

Deno.test({
  name: "team: a newcomer to a team with a long history receives the values set before it",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await TeamCluster.with("team-history", async (c) => {
      await Promise.all(["a", "n"].map((n) => c.add(n)));
      await c.ok("a", "team", "create", TEAM);
      // History: 30 invites (never used) make a chain the newcomer needs a while to check.
      const invites = await Promise.all(Array.from({ length: 30 }, () => c.invite("a", TEAM)));
      assert.equal(new Set(invites.map((i) => i.id)).size, 30);
      await c.ok("a", "env", "set", "OLD_ONE=from-before", "OLD_TWO=also-before", "--team", TEAM);
      const inv = await c.invite("a", TEAM);
      await c.join("n", inv.code!);
      await c.waitMembers(["a", "n"], TEAM, { a: "admin", n: "member" });
      await waitFor(
        "n reads both values set before it joined",
        async () =>
          (await tryGet(c, "n", "OLD_ONE")) === "from-before\n" &&
          (await tryGet(c, "n", "OLD_TWO")) === "also-before\n",
        5000,
      );
      assert.deepEqual((await c.envList("n", TEAM)).map((r) => [r.key, r.readable]), [
        ["OLD_ONE", true],
        ["OLD_TWO", true],
      ]);
    });
  },
});

Deno.test({
  name: "team: a value set on one member is readable on the others within 1 s",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await TeamCluster.with("team-prop", async (c) => {
      await smallTeam(c, "a", ["b", "c"]);
      // Sessions settle first: the first value may wait for the joiners' sessions to come up.
      await c.ok("a", "env", "set", "API_KEY=first", "--team", TEAM);
      await waitFor(
        "the first value everywhere",
        async () =>
          (await tryGet(c, "b", "API_KEY")) === "first\n" &&
          (await tryGet(c, "c", "API_KEY")) === "first\n",
        10_000,
      );

      for (const value of ["second-value", "third value with spaces"]) {
        await c.ok("a", "env", "set", `API_KEY=${value}`, "--team", TEAM);
        const started = performance.now();
        // Polled over the control socket every 20 ms: a `den env get` process per poll would
        // add its own start-up (0.3–1 s on a loaded machine) to what is measured.
        const seen = await Promise.all(["b", "c"].map(async (n) => {
          await waitFor(
            `${n} reads ${value}`,
            async () => (await getViaSocket(c, n, "API_KEY")) === value,
            5000,
            20,
          );
          return performance.now() - started;
        }));
        for (const [i, ms] of seen.entries()) {
          assert.ok(ms < 1000, `${["b", "c"][i]} read the new value after ${Math.round(ms)} ms`);
        }
      }
      // b's change goes the other way, too.
      await c.ok("b", "env", "set", "FROM_B=hello", "--team", TEAM);
      const started = performance.now();
      await waitFor(
        "a reads b's value",
        async () => (await tryGet(c, "a", "FROM_B")) === "hello\n",
        5000,
      );
      assert.ok(performance.now() - started < 1000, "a read b's value within 1 s");
    });
  },
});

Deno.test({
  name: "team: a member without access to an environment sees keys but cannot read until granted",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await TeamCluster.with("team-reader", async (c) => {
      await smallTeam(c, "a", ["e"], "staging");
      const e = (await c.members("a", TEAM)).find((m) => m.name === "e")!;
      assert.deepEqual(e.envs, ["staging"]);

      await c.ok("a", "env", "set", "DB_URL=postgres://db.internal/prod", "--team", TEAM);
      let row: { key: string; readable: boolean } | undefined;
      await waitFor("e lists DB_URL", async () => {
        row = (await c.envList("e", TEAM)).find((r) => r.key === "DB_URL");
        return row !== undefined;
      }, 5000);
      assert.equal(row!.readable, false);
      const denied = await c.run("e", "env", "get", "DB_URL", "--team", TEAM);
      assert.equal(denied.code, 4, denied.stderr);
      assert.match(denied.stderr, /cannot read environment default/);
      assert.equal(denied.stdout, "");
      // a reads it, of course.
      assert.equal(
        await c.ok("a", "env", "get", "DB_URL", "--team", TEAM),
        "postgres://db.internal/prod\n",
      );

      const granted = await c.json<{ granted: string }>(
        "a",
        "env",
        "grant",
        "e",
        "--env",
        "default",
        "--team",
        TEAM,
      );
      assert.equal(granted.granted, "default");
      await waitFor(
        "e reads DB_URL after the grant",
        async () => (await tryGet(c, "e", "DB_URL")) === "postgres://db.internal/prod\n",
        5000,
      );
      const after = (await c.envList("e", TEAM)).find((r) => r.key === "DB_URL")!;
      assert.equal(after.readable, true);
      await waitFor(
        "e's membership shows both environments on a",
        async () =>
          JSON.stringify((await c.members("a", TEAM)).find((m) => m.name === "e")?.envs) ===
            JSON.stringify(["default", "staging"]),
        5000,
      );
    });
  },
});

Deno.test({
  name: "team: forged, cut, reused, expired and unapproved invite codes are refused, saying why",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await TeamCluster.with("team-codes", async (c) => {
      await Promise.all(["a", "b", "x", "y"].map((n) => c.add(n)));
      await c.ok("a", "team", "create", TEAM);
      const inv = await c.invite("a", TEAM);
      const code = inv.code!;
      assert.match(code, /^den1[A-Za-z0-9_-]+$/);

      // Forged: one character in the middle changed.
      const mid = Math.floor(code.length / 2);
      const flipped = code.slice(0, mid) + (code[mid] === "A" ? "B" : "A") + code.slice(mid + 1);
      const forged = await c.run("y", "join", flipped);
      assert.equal(forged.code, 5, forged.stderr);
      assert.match(forged.stderr, /altered or forged/);

      // Cut short: the first half of it.
      const body = code.slice(4);
      const half = "den1" + body.slice(0, Math.floor(body.length / 8) * 4);
      const cut = await c.run("y", "join", half);
      assert.equal(cut.code, 2, cut.stderr);
      assert.match(cut.stderr, /not a valid invite code: it is cut short/);

      // Used: x joins, then y tries the same code.
      await c.join("x", code);
      const reused = await c.run("y", "join", code);
      assert.equal(reused.code, 4, reused.stderr);
      assert.match(reused.stderr, /already used/);
      await c.waitMembers(["a"], TEAM, { a: "admin", x: "member" });
      assert.equal((await c.json<unknown[]>("y", "team", "list")).length, 0);

      // Expired: a code made with --expires 1m no longer decodes two minutes later.
      const short = await c.invite("a", TEAM, "--expires", "1m");
      const now = Date.now();
      const decoded = await decodeInvite(short.code!, now);
      assert.ok(decoded.expires > now && decoded.expires <= now + 60_000, "expires in 1 min");
      assert.equal(decoded.inviter.fingerprint, c.fp("a"));
      assert.deepEqual(decoded.addresses, [c.node("a").listen]);
      await assert.rejects(decodeInvite(short.code!, now + 2 * 60_000), (err: unknown) => {
        const e = err as { code: string; message: string; exit: number };
        assert.equal(e.code, "invite_expired");
        assert.equal(e.exit, 4);
        assert.match(e.message, /this invite code expired at \d{4}-\d\d-\d\dT/);
        return true;
      });
      // The same, through `den join`: a genuine code (signed with a's own key, read from its
      // unencrypted keystore) whose expiry has passed.
      const identity = await readKeystore(
        `${c.home("a")}/identity.key`,
        () => Promise.reject(new Error("the test node has no passphrase")),
      );
      const expired = await encodeInvite({ ...decoded, expires: now - 1000 }, identity.signing);
      const late = await c.run("y", "join", expired);
      assert.equal(late.code, 4, late.stderr);
      assert.match(late.stderr, /expired/);

      // Unapproved: with two admins an invite is pending and has no code.
      const toB = await c.invite("a", TEAM, "--role", "admin");
      await c.join("b", toB.code!);
      await c.waitMembers(["a", "b"], TEAM, { a: "admin", b: "admin", x: "member" });
      const pending = await c.invite("a", TEAM);
      assert.equal(pending.state, "pending");
      assert.equal(pending.code, null);
      const listed = (await c.proposals("a", TEAM)).find((p) => p.id === pending.id)!;
      assert.equal(listed.state, "pending");
      assert.equal(listed.approvals, 1);
      assert.equal(listed.required, 2);
      assert.equal(listed.code, null);
      // The inviter itself refuses it on the wire: a code carrying the pending invite's real
      // one-time seed (as if it had leaked from a's den.db), signed by a, gets "not approved".
      const db = new DatabaseSync(`${c.home("a")}/den.db`, { readOnly: true });
      let seed: Uint8Array;
      try {
        const row = db.prepare("SELECT seed FROM invites WHERE proposal = ?").get(pending.id) as
          | { seed: Uint8Array }
          | undefined;
        assert.ok(row, "a keeps the pending invite's seed");
        seed = new Uint8Array(row.seed);
      } finally {
        db.close();
      }
      const early = await encodeInvite({
        ...decoded,
        proposal: pending.id,
        seed,
        expires: now + 3600_000,
      }, identity.signing);
      const unapproved = await c.run("y", "join", early);
      assert.equal(unapproved.code, 4, unapproved.stderr);
      assert.match(unapproved.stderr, /not been approved/);
      await c.waitMembers(["a", "b"], TEAM, { a: "admin", b: "admin", x: "member" });
    });
  },
});

Deno.test({
  name: "team: a joiner that cannot reach the inviter's address joins through the relay",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const relay = await startRelay();
    try {
      await TeamCluster.with("team-relay", async (c) => {
        await c.add("a", ["--relay", relay.url]);
        await c.add("j"); // no relay of its own: it learns the relay from the code
        await c.ok("a", "team", "create", TEAM);
        const inv = await c.invite("a", TEAM);
        const code = inv.code!;
        const oldListen = c.node("a").listen;
        assert.deepEqual((await decodeInvite(code, Date.now())).addresses, [oldListen]);
        assert.deepEqual((await decodeInvite(code, Date.now())).relays, [relay.url]);

        // a moves to another port: the address in the code is dead now.
        await c.goodbye("a");
        const cfgPath = `${c.home("a")}/config.toml`;
        const cfg = await Deno.readTextFile(cfgPath);
        assert.ok(cfg.includes(`"${oldListen}"`));
        const newListen = `127.0.0.1:${freePort()}`;
        await Deno.writeTextFile(cfgPath, cfg.replace(`"${oldListen}"`, `"${newListen}"`));
        await c.start("a");
        assert.equal((await c.json<{ listen: string }>("a", "status")).listen, newListen);
        await waitFor(
          "a's relay mailbox",
          async () =>
            (await c.json<{ relays: { state: string }[] }>("a", "status")).relays
              .some((r) => r.state === "ready"),
          10_000,
        );

        await c.join("j", code);
        const viaRelay = (await c.peers("j")).find((p) => p.fingerprint === c.fp("a"));
        assert.ok(viaRelay, "j lists a as a peer");
        assert.equal(viaRelay.state, "connected");
        const jLog = c.daemons.get("j")!.log;
        assert.match(jLog, /peer connected peer=a .*transport=relay/, "j reached a by the relay");
        assert.doesNotMatch(jLog, /peer connected peer=a .*transport=tcp/);
        // a itself may move the session to j's (reachable) address later; until then it is
        // the relayed one.
        if (!/peer session moved to a direct connection peer=a/.test(jLog)) {
          assert.equal(viaRelay.transport, "relay");
        }
        await c.waitMembers(["a", "j"], TEAM, { a: "admin", j: "member" });
        // The relayed session carries the team's secrets too.
        await c.ok("a", "env", "set", "RELAYED=yes", "--team", TEAM);
        await waitFor(
          "j reads a value through the relay",
          async () => (await tryGet(c, "j", "RELAYED")) === "yes\n",
          5000,
        );
      });
    } finally {
      await relay.stop();
    }
  },
});

Deno.test({
  name: "team: a removed member is refused, dropped from the team, and its values flagged",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await TeamCluster.with("team-remove", async (c) => {
      await smallTeam(c, "a", ["b", "c"]);
      await c.ok("a", "env", "set", "SHARED=c-knows-this", "--team", TEAM);
      await waitFor(
        "c reads SHARED",
        async () => (await tryGet(c, "c", "SHARED")) === "c-knows-this\n",
        10_000,
      );
      await waitFor(
        "b reads SHARED",
        async () => (await tryGet(c, "b", "SHARED")) === "c-knows-this\n",
        10_000,
      );
      const before = (await c.envList("a", TEAM)).find((r) => r.key === "SHARED")!;
      assert.equal(before.rotate, false);

      const removal = await c.json<{ state: string; kind: string }>(
        "a",
        "team",
        "remove",
        "c",
        "--team",
        TEAM,
      );
      assert.equal(removal.kind, "remove");
      assert.equal(removal.state, "approved");

      await c.waitMembers(["a", "b"], TEAM, { a: "admin", b: "member" });
      await waitFor("a no longer keeps a session with c", async () => {
        const p = (await c.peers("a")).find((x) => x.fingerprint === c.fp("c"));
        return p === undefined || p.state === "refused";
      }, 5000);
      await waitFor("c sees it is refused because it was removed", async () => {
        const p = (await c.peers("c")).find((x) => x.fingerprint === c.fp("a"));
        return p?.state === "refused" && /removed/.test(p.reason ?? "");
      }, 15_000);

      const flagged = (await c.envList("a", TEAM)).find((r) => r.key === "SHARED")!;
      assert.equal(flagged.rotate, true, "a value c could read is due for rotation");
      await waitFor(
        "b flags SHARED for rotation too",
        async () => (await c.envList("b", TEAM)).find((r) => r.key === "SHARED")?.rotate === true,
        5000,
      );
      // The remaining members still read it.
      assert.equal(await tryGet(c, "b", "SHARED"), "c-knows-this\n");

      // Whatever c writes now never reaches a or b.
      await c.run("c", "env", "set", "FROM_REMOVED=evil", "SHARED=overwritten", "--team", TEAM);
      await sleep(3000);
      for (const n of ["a", "b"]) {
        const keys = (await c.envList(n, TEAM)).map((r) => r.key);
        assert.ok(!keys.includes("FROM_REMOVED"), `${n} got c's op after the removal`);
        assert.equal(await tryGet(c, n, "SHARED"), "c-knows-this\n");
      }
      for (const n of ["a", "b"]) {
        const p = (await c.peers("c")).find((x) => x.fingerprint === c.fp(n));
        assert.notEqual(p?.state, "connected", `c is connected to ${n} again`);
        const back = (await c.peers(n)).find((x) => x.fingerprint === c.fp("c"));
        assert.notEqual(back?.state, "connected", `${n} accepted c again`);
      }
    });
  },
});

Deno.test({
  name: "team: a member who leaves disappears from the others' member lists",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await TeamCluster.with("team-leave", async (c) => {
      await smallTeam(c, "a", ["b", "c"]);
      const left = await c.json<{ left: string }>("b", "team", "leave", TEAM);
      assert.equal(left.left, TEAM);
      const mine = await c.json<{ name: string; state: string }[]>("b", "team", "list");
      assert.equal(mine.find((t) => t.name === TEAM)?.state, "left");
      await c.waitMembers(["a", "c"], TEAM, { a: "admin", c: "member" }, 5000);
    });
  },
});
