/**
 * The plain secure-chat wire format (JOIN / PEER_FOUND / SIGNAL KEY_EXCHANGE + MSG with NaCl box),
 * checked with an independent client (tests/support/independent_chat_client.ts) written from the
 * wire description only: first two independent clients through a real `den relay`, then den's
 * own `den chat --compat` child process against the independent client, driven in line mode
 * (piped stdin/stdout).
 */
import assert from "node:assert/strict";
import { startRelay } from "../../scripts/lib/den_process.ts";
import { ChatChild } from "../support/chat_child.ts";
import {
  IndependentChatClient,
  randomRoom,
  tamperFrame,
} from "../support/independent_chat_client.ts";

const WAIT = 15_000; // the longest any single wait may take

// ---------------------------------------------------------------- helpers

/** Runs `fn` with a fresh relay, always stopping it. */
async function withRelay(fn: (url: string) => Promise<void>): Promise<void> {
  const relay = await startRelay();
  try {
    await fn(relay.url);
  } finally {
    await relay.stop();
  }
}

/** Runs `fn` with a list that collects clients, closing them all afterwards. */
async function withClients(
  fn: (open: (url: string, room: string) => Promise<IndependentChatClient>) => Promise<void>,
): Promise<void> {
  const all: IndependentChatClient[] = [];
  try {
    await fn(async (url, room) => {
      const c = await IndependentChatClient.connect(url, room, WAIT);
      all.push(c);
      return c;
    });
  } finally {
    await Promise.all(all.map((c) => c.close()));
  }
}

/**
 * Starts `den chat ROOM --relay URL [--compat]`, waits for it to be waiting in the room, joins
 * an independent client and waits until both sides have each other's key.
 */
async function denSession(
  url: string,
  open: (url: string, room: string) => Promise<IndependentChatClient>,
  den: ChatChild[],
  opts: { compat?: boolean; prefix?: string } = {},
): Promise<{ chat: ChatChild; client: IndependentChatClient; room: string }> {
  const room = randomRoom(opts.prefix ?? "DEN");
  const chat = new ChatChild([
    room,
    "--relay",
    url,
    ...(opts.compat === false ? [] : ["--compat"]),
  ]);
  den.push(chat);
  await chat.waitLine(new RegExp(`^\\* waiting for someone to join room ${room}`));
  const client = await open(url, room);
  await client.waitPeerFound(WAIT);
  return { chat, client, room };
}

/** Connected and keyed: den printed its encrypted notice, the client has den's key. */
async function denReady(url: string, open: Parameters<typeof denSession>[1], den: ChatChild[]) {
  const s = await denSession(url, open, den);
  await s.client.waitKeyExchange(WAIT);
  await s.chat.waitLine(/^\* end-to-end encrypted/);
  return s;
}

/** Runs `fn` with a relay, client bookkeeping and den processes, all cleaned up. */
function scenario(
  fn: (
    url: string,
    open: (url: string, room: string) => Promise<IndependentChatClient>,
    den: ChatChild[],
  ) => Promise<void>,
): () => Promise<void> {
  return () =>
    withRelay((url) =>
      withClients(async (open) => {
        const den: ChatChild[] = [];
        try {
          await fn(url, open, den);
        } finally {
          await Promise.all(den.map((d) => d.kill()));
        }
      })
    );
}

const UNICODE = "grüße, 日本語, emoji 🔐🎉, RTL עברית, combining e\u0301, math ∑∞ — ok";

/** A 1000-character (UTF-16 code unit) message with some non-ASCII in it, no newline. */
function longMessage(): string {
  const base = "Lorem ipsum dolor sit amet, consectetur adipiscing elit é ü ß ";
  let s = "";
  while (s.length < 1000) s += base;
  return s.slice(0, 999) + "!";
}

// ---------------------------------------------------------------- independent ↔ independent

Deno.test("chat wire format: two independent clients through den relay", async (t) => {
  const relay = await startRelay();
  try {
    await t.step("key exchange and messages both ways", () =>
      withClients(async (open) => {
        const room = randomRoom("IND");
        const a = await open(relay.url, room);
        const b = await open(relay.url, room);
        await a.waitPeerFound(WAIT);
        await b.waitPeerFound(WAIT);
        assert.deepEqual(await a.waitKeyExchange(WAIT), b.publicKey);
        assert.deepEqual(await b.waitKeyExchange(WAIT), a.publicKey);

        a.send("hello from A");
        assert.equal(await b.nextMessage(WAIT), "hello from A");
        b.send(UNICODE);
        assert.equal(await a.nextMessage(WAIT), UNICODE);
        const long = longMessage();
        a.send(long);
        assert.equal(await b.nextMessage(WAIT), long);
        b.send("");
        assert.equal(await a.nextMessage(WAIT), "");

        // Frames arrive verbatim: the KEY_EXCHANGE B received is exactly what A produced.
        const kx = JSON.parse(b.rawFrames.find((f) => f.includes("KEY_EXCHANGE"))!);
        assert.equal(kx.key.length, 44, "32-byte key = 44 base64 chars with padding");
        assert.ok(kx.key.endsWith("="));

        // Same plaintext twice → different nonces, different payloads.
        const f1 = JSON.parse(a.sealed("same")).payload;
        const f2 = JSON.parse(a.sealed("same")).payload;
        assert.notEqual(f1, f2);

        // A tampered frame does not open.
        b.sendRaw(tamperFrame(b.sealed("tampered")));
        await assert.rejects(a.nextMessage(WAIT), /decrypt/);
        assert.deepEqual(a.errors, []);
        assert.deepEqual(b.errors, []);

        await b.close();
        await a.waitPeerLeft(WAIT);
      }));

    await t.step(
      "a third client joining the same room gets ERROR 409",
      () =>
        withClients(async (open) => {
          const room = randomRoom("FULL");
          const a = await open(relay.url, room);
          const b = await open(relay.url, room);
          await a.waitPeerFound(WAIT);
          await b.waitPeerFound(WAIT);
          const c = await open(relay.url, room);
          const err = await c.waitError(WAIT);
          assert.equal(err.code, 409, JSON.stringify(err));
          assert.equal(typeof err.message, "string");
          // The pair is unaffected.
          await a.waitKeyExchange(WAIT);
          await b.waitKeyExchange(WAIT);
          a.send("still here");
          assert.equal(await b.nextMessage(WAIT), "still here");
        }),
    );
  } finally {
    await relay.stop();
  }
});

// ---------------------------------------------------------------- den chat --compat

Deno.test("den chat --compat with an independent client", async (t) => {
  await t.step(
    "messages both ways (unicode, 1000 characters) and the compat warning",
    scenario(async (url, open, den) => {
      const { chat, client } = await denReady(url, open, den);

      client.send("hello den");
      assert.equal(await chat.waitLine(/^peer: /), "peer: hello den");
      client.send(UNICODE);
      assert.equal(await chat.waitLine(/^peer: /), `peer: ${UNICODE}`);
      const long = longMessage();
      client.send(long);
      assert.equal(await chat.waitLine(/^peer: /), `peer: ${long}`);

      await chat.writeLine("hello independent");
      assert.equal(await client.nextMessage(WAIT), "hello independent");
      await chat.writeLine(UNICODE);
      assert.equal(await client.nextMessage(WAIT), UNICODE);
      await chat.writeLine(long);
      assert.equal(await client.nextMessage(WAIT), long);

      await chat.writeLine("/quit");
      const r = await chat.exited();
      assert.equal(r.code, 0, `/quit should end den chat with 0\n${r.stderr}`);
      await client.waitPeerLeft(WAIT);

      assert.match(r.stderr, /no post-quantum protection/, "compat warning on stderr");
      assert.deepEqual(client.errors, []);
      // den's SIGNAL frames have exactly the described shape.
      for (const raw of client.rawFrames) {
        const f = JSON.parse(raw);
        if (f.type !== "SIGNAL") continue;
        if (f.kind === "KEY_EXCHANGE") {
          assert.deepEqual(Object.keys(f).sort(), ["key", "kind", "type"], raw);
          assert.match(f.key, /^[A-Za-z0-9+/]{43}=$/, "32 bytes, standard base64, padded");
        } else {
          assert.equal(f.kind, "MSG", `unexpected SIGNAL from den --compat: ${raw}`);
          assert.deepEqual(Object.keys(f).sort(), ["kind", "payload", "type"], raw);
        }
      }
      // Every stdout line is a notice or a message.
      for (const line of r.stdout.split("\n").filter((l) => l !== "")) {
        assert.match(line, /^(\* |peer: )/, `unexpected stdout line ${JSON.stringify(line)}`);
      }
    }),
  );

  await t.step(
    "EOF on stdin sends what was queued, then quits",
    scenario(async (url, open, den) => {
      const { chat, client } = await denReady(url, open, den);
      await chat.writeLine("first");
      await chat.writeLine("second");
      await chat.closeStdin();
      assert.equal(await client.nextMessage(WAIT), "first");
      assert.equal(await client.nextMessage(WAIT), "second");
      await client.waitPeerLeft(WAIT);
      const r = await chat.exited();
      assert.equal(r.code, 0, r.stderr);
    }),
  );

  await t.step(
    "/verify prints the safety words",
    scenario(async (url, open, den) => {
      const { chat, client } = await denReady(url, open, den);
      // A message as a marker: whatever den printed on its own before it is behind the cursor.
      client.send("sync");
      assert.equal(await chat.waitLine(/^peer: /), "peer: sync");
      await chat.writeLine("/verify");
      const line = await chat.waitLine(/^\* .*verify/i);
      const words = line.match(/\b[a-z]{2,}\b/g) ?? [];
      assert.ok(words.length >= 7, `"verify" plus six words expected: ${JSON.stringify(line)}`);
      await chat.writeLine("/quit");
      assert.equal((await chat.exited()).code, 0);
    }),
  );

  await t.step(
    "a replayed MSG ends the session with exit 5",
    scenario(async (url, open, den) => {
      const { chat, client } = await denReady(url, open, den);
      const frame = client.sealed("only once");
      client.sendRaw(frame);
      assert.equal(await chat.waitLine(/^peer: /), "peer: only once");
      client.sendRaw(frame);
      const r = await chat.exited();
      assert.equal(r.code, 5, `expected exit 5 on replay\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /replay|received twice/i);
      assert.equal(
        r.stdout.split("\n").filter((l) => l === "peer: only once").length,
        1,
        "the replayed message must not be shown twice",
      );
    }),
  );

  await t.step(
    "a tampered MSG ends the session with exit 5",
    scenario(async (url, open, den) => {
      const { chat, client } = await denReady(url, open, den);
      client.send("genuine");
      assert.equal(await chat.waitLine(/^peer: /), "peer: genuine");
      client.sendRaw(client.tampered("forged"));
      const r = await chat.exited();
      assert.equal(r.code, 5, `expected exit 5 on a tampered MSG\n${r.stdout}\n${r.stderr}`);
      assert.ok(r.stderr.trim().length > 0, "the reason goes to stderr");
      assert.doesNotMatch(r.stdout, /forged/);
    }),
  );

  await t.step(
    "the independent client leaving → den says the other person left and exits 0",
    scenario(async (url, open, den) => {
      const { chat, client } = await denReady(url, open, den);
      client.send("bye");
      assert.equal(await chat.waitLine(/^peer: /), "peer: bye");
      await client.close();
      await chat.waitLine(/^\* .*other person left/);
      const r = await chat.exited();
      assert.equal(r.code, 0, r.stderr);
    }),
  );
});

Deno.test("den chat without --compat tells to use --compat", async () => {
  await scenario(async (url, open, den) => {
    // The independent client speaks only the plain format (it sent its KEY_EXCHANGE right after
    // PEER_FOUND); den, not in compat mode, must refuse and say how to talk to it.
    const { chat } = await denSession(url, open, den, { compat: false, prefix: "PQ" });
    const r = await chat.exited();
    assert.notEqual(r.code, 0, `den chat without --compat should fail\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout + r.stderr, /--compat/);
  })();
});
