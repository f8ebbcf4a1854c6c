/**
 * The session fuzzer of tests/unit/session_fuzz_test.ts, for longer:
 *   BENCH_SECONDS=600 deno run -A scripts/bench/fuzz_session.ts
 * BENCH_SECONDS (default 60) bounds the run; FUZZ_SEED replays a run. Prints the cases tried and
 * the errors seen per reason; exits 1 with the seed and input if an invariant breaks (an
 * exception other than HandshakeError/RecordError, or a changed input accepted).
 */
import { FuzzFailure, fuzzSession, TARGETS } from "../lib/session_fuzz.ts";

const seconds = Number(Deno.env.get("BENCH_SECONDS") ?? 60);
const seedText = Deno.env.get("FUZZ_SEED");
if (!(seconds > 0)) throw new RangeError(`BENCH_SECONDS must be a positive number`);

console.log(`fuzzing the session layer for ${seconds} s (deno ${Deno.version.deno})`);
try {
  const r = await fuzzSession({
    ms: seconds * 1000,
    seed: seedText === undefined ? undefined : Number(seedText),
  });
  console.log(`seed ${r.seed}: ${r.iterations} cases in ${(r.elapsedMs / 1000).toFixed(1)} s`);
  for (const t of TARGETS) console.log(`  ${t.padEnd(8)} ${r.cases[t]}`);
  console.log(
    `accepted: ${r.accepted} (unchanged inputs, well-formed identity blocks, changed M1s that ` +
      "were answered and then refused by the initiator)",
  );
  console.log("errors:");
  for (const [k, n] of Object.entries(r.errors).sort()) console.log(`  ${k.padEnd(26)} ${n}`);
  console.log("invariants held: only HandshakeError/RecordError, no changed input accepted");
} catch (err) {
  if (!(err instanceof FuzzFailure)) throw err;
  console.error(`FAILED: ${err.message}`);
  Deno.exit(1);
}
