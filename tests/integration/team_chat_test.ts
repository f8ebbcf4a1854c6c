/**
 * Team chat end to end (docs/CHAT.md, "Team chat"): two real daemons, alice and bob, in one team
 * formed through the CLI, and `den chat @MEMBER` child processes driven in line mode (piped
 * stdin/stdout): live messages both ways, the backlog a daemon holds in memory for a window that
 * is not open, a teammate going offline, usage errors, the length limit, and nothing on disk.
 */
import assert from "node:assert/strict";
import { waitFor } from "../../scripts/lib/den_process.ts";
import { containsBytes } from "../../scripts/lib/tcp_proxy.ts";
import { ChatChild } from "../support/chat_child.ts";
import { filesUnder } from "../support/den_nodes.ts";
import { TeamCluster } from "../support/team_cluster.ts";

const TEAM = "acme";
const WAIT = 15_000; // the longest any single wait may take
const LIVE = 5_000; // a live message must show within this

// ---------------------------------------------------------------- den chat child process

/** `den chat @MEMBER --home HOME`, with the checks the steps below repeat. */
class TeamChat extends ChatChild {
  constructor(home: string, member: string) {
    super([`@${member}`, "--home", home], { name: `@${member} (${home})` });
  }

  /** Waits for `from: text` as the next message line (notices in between are skipped). */
  async waitMessage(from: string, text: string, timeoutMs = LIVE): Promise<void> {
    const line = await this.waitLine(new RegExp(`^${from}: `), timeoutMs);
    assert.equal(line, `${from}: ${text}`, this.describe());
  }

  /** EOF on stdin, then the exit code must be 0 (pending sends done). */
  async endOk(): Promise<void> {
    await this.closeStdin();
    const r = await this.exited(WAIT);
    assert.equal(r.code, 0, `EOF should end den chat with 0\n${this.describe()}`);
  }
}

// ---------------------------------------------------------------- helpers

/** alice creates the team, invites bob, bob joins; both list both and the session is up. */
async function aliceAndBob(c: TeamCluster): Promise<void> {
  await Promise.all(["alice", "bob"].map((n) => c.add(n)));
  await c.ok("alice", "team", "create", TEAM);
  const inv = await c.invite("alice", TEAM, "--env", "default");
  assert.ok(inv.code, `a single admin's invite has a code at once: ${JSON.stringify(inv)}`);
  await c.join("bob", inv.code);
  await c.waitMembers(["alice", "bob"], TEAM, { alice: "admin", bob: "member" });
  for (const [on, other] of [["alice", "bob"], ["bob", "alice"]]) {
    await waitFor(
      `${on} connected to ${other}`,
      async () =>
        (await c.peers(on)).some((p) => p.fingerprint === c.fp(other) && p.state === "connected"),
      WAIT,
    );
  }
}

/** UTF-16LE bytes of an ASCII string (SQLite may store text that way). */
function utf16le(s: string): Uint8Array {
  const b = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) b[i * 2] = s.charCodeAt(i);
  return b;
}

/** No file under the homes holds `canary` (UTF-8 or UTF-16LE); returns the files searched. */
async function assertNotOnDisk(homes: string[], canary: string): Promise<string[]> {
  const needles = [new TextEncoder().encode(canary), utf16le(canary)];
  const searched: string[] = [];
  for (const home of homes) {
    for (const path of await filesUnder(home)) {
      const bytes = await Deno.readFile(path);
      searched.push(path);
      for (const n of needles) assert.ok(!containsBytes(bytes, n), `${path} holds the chat text`);
    }
  }
  return searched;
}

const UNICODE = "grüße, 日本語, emoji 🔐🎉, עברית, combining e\u0301, math ∑∞ — ok";

/** Exactly `n` code points, most of them outside the BMP (two UTF-16 units each). */
function codePoints(n: number): string {
  const base = [..."a🔐é日🎉ß"];
  return Array.from({ length: n }, (_, i) => base[i % base.length]).join("");
}

// ---------------------------------------------------------------- the test

/** Runs `fn` on a fresh alice+bob team with chat windows that are always killed afterwards. */
function withTeam(
  prefix: string,
  fn: (c: TeamCluster, open: (node: string, member: string) => TeamChat) => Promise<void>,
): Promise<void> {
  return TeamCluster.with(prefix, async (c) => {
    await aliceAndBob(c);
    const chats: TeamChat[] = [];
    try {
      await fn(c, (node, member) => {
        const chat = new TeamChat(c.home(node), member);
        chats.push(chat);
        return chat;
      });
    } finally {
      await Promise.all(chats.map((chat) => chat.kill()));
    }
  });
}

/** Every stdout line of a line-mode team chat is a notice or a message. */
function assertLineFormat(chat: TeamChat): void {
  for (const line of chat.lines) {
    assert.match(line, /^(\* |alice: |bob: )/, `unexpected line ${JSON.stringify(line)}`);
  }
}

Deno.test({
  name: "team chat: den chat @MEMBER between two daemons of one team",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await withTeam("team-chat", async (c, open) => {
      const failed: string[] = [];
      const step = async (name: string, fn: () => Promise<void>) => {
        const ok = await t.step({ name, sanitizeOps: false, sanitizeResources: false, fn });
        if (!ok) failed.push(name);
      };
      // One window each, kept open from the live step to the disk step.
      let bobWindow: TeamChat | null = null;
      let aliceWindow: TeamChat | null = null;

      await step("messages sent while no window is open wait in RAM and come first", async () => {
        const toBob = open("alice", "bob");
        await toBob.waitLine(/^\* team chat with bob: .*bob is online\.$/);
        await toBob.writeLines("backlog one", "backlog two 🎒", "backlog three");
        await toBob.waitLine(
          /^\* bob has no chat window open: they will see it when they open one$/,
        );
        // EOF: the queued sends finish, then the chat ends with 0.
        await toBob.endOk();
        assert.equal(toBob.stderr, "", toBob.describe());
        assert.equal(
          toBob.lines.filter((l) => /no chat window open/.test(l)).length,
          1,
          `the no-window notice is given once\n${toBob.describe()}`,
        );

        const b = bobWindow = open("bob", "alice");
        await b.waitLine(/^alice: backlog three$/);
        assert.match(b.lines[0], /^\* team chat with alice: .*alice is online\.$/);
        assert.deepEqual(
          b.lines.slice(1, 4),
          ["alice: backlog one", "alice: backlog two 🎒", "alice: backlog three"],
          `the greeting, then the backlog in order, before anything else\n${b.describe()}`,
        );
      });

      await step("live both ways within 5 s, unicode, order of quick messages kept", async () => {
        assert.ok(bobWindow?.running, "bob's window is open");
        const b = bobWindow;
        const a = aliceWindow = open("alice", "bob");
        await a.waitLine(/^\* team chat with bob: /);

        await a.writeLine(UNICODE);
        await b.waitMessage("alice", UNICODE, LIVE);
        await b.writeLine(`re: ${UNICODE} ✓`);
        await a.waitMessage("bob", `re: ${UNICODE} ✓`, LIVE);

        const five = ["1 一", "2 二", "3 三", "4 四", "5 五"];
        await a.writeLines(...five);
        for (const m of five) await b.waitMessage("alice", m, LIVE);
        await b.writeLine("ok 👍");
        await a.waitMessage("bob", "ok 👍", LIVE);

        // bob's window is open: alice is not told it is not.
        assert.doesNotMatch(a.stdout, /no chat window open/, a.describe());
        assert.equal(a.stderr, "", a.describe());
        assert.equal(b.stderr, "", b.describe());
      });

      await step("a message over 1000 characters is refused locally, not delivered", async () => {
        assert.ok(aliceWindow?.running && bobWindow?.running, "both windows are open");
        const [a, b] = [aliceWindow, bobWindow];
        const tooLong = codePoints(1001);
        const longest = codePoints(1000);
        assert.ok(longest.length > 1000, "the limit counts code points, not UTF-16 units");
        await a.writeLine(tooLong);
        const err = await a.waitErr(/^den: /);
        assert.match(err, /not sent/);
        assert.match(err, /1001 characters/);
        assert.match(err, /limit is 1000/);
        // The next message through is the one after: the long one never left.
        await a.writeLine(longest);
        await b.waitMessage("alice", longest, LIVE);
        await a.writeLine("after the long ones");
        await b.waitMessage("alice", "after the long ones", LIVE);
        assert.ok(!b.stdout.includes(tooLong), "the refused message was not shown");
        assert.ok(a.running, "a refused message does not end the chat");
      });

      await step("usage: @nobody exits 2 naming it; --compat with @MEMBER exits 2", async () => {
        const nobody = await c.run("alice", "chat", "@nobody");
        assert.equal(nobody.code, 2, `den chat @nobody: ${JSON.stringify(nobody)}`);
        assert.match(nobody.stderr, /no teammate or peer called nobody/);
        assert.equal(nobody.stdout, "");

        const compat = await c.run("alice", "chat", "@bob", "--compat");
        assert.equal(compat.code, 2, `den chat @bob --compat: ${JSON.stringify(compat)}`);
        assert.match(compat.stderr, /--compat/);
        assert.equal(compat.stdout, "");
      });

      const canary = `canary-${crypto.randomUUID()}`;
      await step("nothing of a chat is written to disk (or to the daemons' logs)", async () => {
        assert.ok(aliceWindow?.running && bobWindow?.running, "both windows are open");
        const [a, b] = [aliceWindow, bobWindow];
        await a.writeLine(`${canary} from alice`);
        await b.waitMessage("alice", `${canary} from alice`, LIVE);
        await b.writeLine(`${canary} from bob`);
        await a.waitMessage("bob", `${canary} from bob`, LIVE);
        await b.endOk();
        // Held in bob's daemon for a window that is not open: in RAM too.
        await a.writeLine(`${canary} held for bob`);
        await a.endOk();
        // Only the refusal of the over-long message went to stderr.
        assert.equal(a.stderr, "den: not sent: 1001 characters; the limit is 1000\n", a.describe());
        assert.equal(b.stderr, "", b.describe());
        assertLineFormat(a);
        assertLineFormat(b);

        const searched = await assertNotOnDisk([c.home("alice"), c.home("bob")], canary);
        for (const n of ["alice", "bob"]) {
          const db = `${c.home(n)}/den.db`;
          assert.ok(searched.includes(db), `${db} searched: ${searched.join(", ")}`);
        }
        for (const [name, d] of c.daemons) {
          assert.ok(!d.log.includes(canary), `${name}'s log holds the chat text`);
        }
      });

      await step("offline: a send says so on stderr; the chat goes on, EOF exits 0", async () => {
        const a = open("alice", "bob");
        await a.waitLine(/^\* team chat with bob: .*bob is online\.$/);
        await c.goodbye("bob");
        await waitFor(
          "alice sees bob's session gone",
          async () =>
            (await c.peers("alice")).some((p) =>
              p.fingerprint === c.fp("bob") && p.state !== "connected"
            ),
          WAIT,
        );
        await a.writeLine("are you there?");
        const err = await a.waitErr(/^den: /);
        assert.match(err, /offline/);
        assert.match(err, /not sent/);
        assert.ok(a.running, `the chat keeps running\n${a.describe()}`);
        await a.writeLine("still there?");
        const again = await a.waitErr(/^den: /);
        assert.match(again, /offline.*not sent/);
        assert.ok(a.running, `the chat keeps running\n${a.describe()}`);
        await a.endOk();

        // bob's daemon has stopped (its database closed and checkpointed): still no trace.
        await assertNotOnDisk([c.home("alice"), c.home("bob")], canary);
      });

      if (failed.length > 0) throw new Error(`failed: ${failed.join("; ")}`);
    });
  },
});

Deno.test({
  name: "team chat: a window opened again shows only what arrived since the last one",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withTeam("team-chat-reopen", async (_c, open) => {
      // docs/CHAT.md: "a window that opens shows what arrived since the last one".
      const a = open("alice", "bob");
      await a.waitLine(/^\* team chat with bob: /);
      const b1 = open("bob", "alice");
      await b1.waitLine(/^\* team chat with alice: /);
      await a.writeLine("first");
      await b1.waitMessage("alice", "first", LIVE);
      await b1.endOk();

      const b2 = open("bob", "alice");
      await b2.waitLine(/^\* team chat with alice: /);
      await a.writeLine("second");
      await b2.waitMessage("alice", "second", LIVE);
      assert.ok(!b2.lines.includes("alice: first"), `"first" was shown again\n${b2.describe()}`);
      await Promise.all([a.endOk(), b2.endOk()]);
    });
  },
});
