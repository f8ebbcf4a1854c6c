/**
 * Room chat, measured: the whole key exchange (both sides, in process: den's committed
 * X25519 + ML-KEM-768 exchange against --compat's plain X25519) and one message sealed and
 * opened, interleaved in rounds so machine noise hits both modes alike; then the time from
 * starting two real `den chat` processes to both printing "end-to-end encrypted" through a real
 * relay on loopback (process start-up included).
 *
 *   deno run -A --unstable-net scripts/bench/chat.ts     (BENCH_ROUNDS, default 20)
 */
import { type ChatEffect, type ChatMode, RoomSession } from "../../src/chat/room_session.ts";
import { randomBytes } from "../../src/crypto/random.ts";
import { denCommand, startRelay } from "../lib/den_process.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 20);

/** Two sessions wired as the relay would; returns the pair once both are CONNECTED. */
function connectPair(mode: ChatMode): [RoomSession, RoomSession] {
  // A clock a second ahead at each look: the send rate limit is not what is measured.
  let ms = 0;
  const now = () => ms += 1000;
  const a = new RoomSession({ mode, random: randomBytes, now });
  const b = new RoomSession({ mode, random: randomBytes, now });
  const queue: [RoomSession, string][] = [];
  const take = (from: RoomSession, effects: ChatEffect[]) => {
    for (const e of effects) {
      if (e.type === "send" && !e.frame.includes('"JOIN"')) {
        queue.push([from === a ? b : a, e.frame]);
      }
    }
  };
  for (const s of [a, b]) {
    s.begin();
    s.enterRoom("BENCHROOM1");
  }
  take(a, a.frame('{"type":"PEER_FOUND"}'));
  take(b, b.frame('{"type":"PEER_FOUND"}'));
  while (queue.length > 0) {
    const [to, frame] = queue.shift()!;
    take(to, to.frame(frame));
  }
  if (a.state !== "CONNECTED" || b.state !== "CONNECTED") throw new Error(`${mode}: not connected`);
  return [a, b];
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

const setup: Record<ChatMode, number[]> = { den: [], compat: [] };
const message: Record<ChatMode, number[]> = { den: [], compat: [] };
const text = "x".repeat(200);
for (let round = 0; round < ROUNDS; round++) {
  for (const mode of ["den", "compat"] as const) {
    let t = performance.now();
    const [a, b] = connectPair(mode);
    setup[mode].push(performance.now() - t);
    t = performance.now();
    for (let i = 0; i < 100; i++) {
      const sent = a.send(text).find((e) => e.type === "send");
      if (sent?.type !== "send") throw new Error("not sent");
      b.frame(sent.frame);
    }
    message[mode].push((performance.now() - t) / 100);
  }
}

console.log(`den chat benchmark (${ROUNDS} rounds, medians)\n`);
for (const mode of ["den", "compat"] as const) {
  console.log(
    `${mode.padEnd(7)} key exchange, both sides ${
      median(setup[mode]).toFixed(2).padStart(7)
    } ms   ` +
      `200-char message seal+open ${(median(message[mode]) * 1000).toFixed(0).padStart(5)} µs`,
  );
}
console.log(
  `den / compat key exchange: ${(median(setup.den) / median(setup.compat)).toFixed(1)}×`,
);

// Two real clients through a real relay: what a person waits for after pressing Enter.
const relay = await startRelay();
try {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const room = `BENCHROOM${i}X`;
    const t = performance.now();
    const clients = [0, 1].map(() =>
      denCommand(["chat", room, "--relay", relay.url], { stdin: "" }).spawn()
    );
    await Promise.all(clients.map(async (c) => {
      const reader = c.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      while (!out.includes("end-to-end encrypted")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`den chat ended early:\n${out}`);
        out += value;
      }
      // Keep reading to the end, so the client never writes into a closed pipe.
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
    }));
    times.push(performance.now() - t);
    for (const c of clients) {
      c.stderr.cancel();
      await c.stdin.close();
      await c.status;
    }
  }
  console.log(
    `\ntwo den chat processes started → both connected through a loopback relay: ` +
      `median ${median(times).toFixed(0)} ms (${times.map((t) => t.toFixed(0)).join(", ")})`,
  );
} finally {
  await relay.stop();
}
