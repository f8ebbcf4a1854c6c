import assert from "node:assert/strict";
import { fuzzSession, TARGETS } from "../../scripts/lib/session_fuzz.ts";

// Bounded: about 2 s in all. scripts/bench/fuzz_session.ts runs the same for longer.
const SEED = Number(Deno.env.get("FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 32));

Deno.test(`fuzz: random and mutated handshake messages and records (seed ${SEED})`, async () => {
  const report = await fuzzSession({ ms: 1700, seed: SEED });
  // fuzzSession throws on any exception other than HandshakeError/RecordError, and on any
  // changed input that was accepted; here we check it actually exercised every target.
  for (const t of TARGETS) assert.ok(report.cases[t] > 0, `no ${t} cases ran`);
  const kinds = Object.keys(report.errors);
  for (const reason of ["malformed", "decrypt"]) {
    assert.ok(kinds.includes(`HandshakeError:${reason}`), `never saw ${reason}: ${kinds}`);
  }
  for (const reason of ["tamper", "truncated"]) {
    assert.ok(kinds.includes(`RecordError:${reason}`), `never saw ${reason}: ${kinds}`);
  }
});
