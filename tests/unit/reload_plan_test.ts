import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/load.ts";
import { planReload } from "../../src/daemon/reload.ts";

const base = `[node]\nname = "a"\nlisten = "127.0.0.1:7834"\nmetrics = "127.0.0.1:9000"\n`;

Deno.test("reload plan: live keys applied, restart-only keys reported and kept", () => {
  const cur = parseConfig(base, "config.toml");
  const next = parseConfig(
    base.replace("7834", "7835").replace("9000", "9001") +
      `[relay]\nurls = ["wss://relay.example:8765"]\n`,
    "config.toml",
  );
  const plan = planReload(cur, next);
  assert.deepEqual(plan.applied, ["node.metrics", "relay"]);
  assert.deepEqual(plan.restartRequired, ["node.listen"]);
  assert.equal(plan.next.node.listen, "127.0.0.1:7834", "listen keeps its running value");
  assert.equal(plan.next.node.metrics, "127.0.0.1:9001");
  assert.deepEqual(plan.next.relay.urls, ["wss://relay.example:8765"]);
});

Deno.test("reload plan: an unchanged file changes nothing", () => {
  const cur = parseConfig(base, "config.toml");
  const plan = planReload(cur, parseConfig(base, "config.toml"));
  assert.deepEqual(plan, { applied: [], restartRequired: [], next: cur });
});
