import assert from "node:assert/strict";
import { closest } from "../../src/util/suggest.ts";
import { formatDuration } from "../../src/cli/output.ts";
import { Logger } from "../../src/log/logger.ts";
import { MetricsRegistry } from "../../src/metrics/registry.ts";

Deno.test("suggest: typos and prefixes find the command; unrelated words find nothing", () => {
  const cmds = ["init", "daemon", "status", "reload", "goodbye", "doctor", "version"];
  assert.equal(closest("stauts", cmds), "status");
  assert.equal(closest("deamon", cmds), "daemon");
  assert.equal(closest("good", cmds), "goodbye");
  assert.equal(closest("xyzzy", cmds), undefined);
});

Deno.test("durations read naturally", () => {
  assert.equal(formatDuration(5), "5s");
  assert.equal(formatDuration(125), "2m 5s");
  assert.equal(formatDuration(3 * 3600 + 61), "3h 1m 1s");
  assert.equal(formatDuration(2 * 86400 + 3600), "2d 1h 0m");
});

Deno.test("logger: text and JSON formats, level filter, child component", () => {
  const lines: string[] = [];
  const now = () => new Date("2026-11-22T10:00:00.123Z");
  const log = new Logger("daemon", { level: "info", sink: (l) => lines.push(l), now });
  log.debug("hidden");
  log.info("started", { name: "alice", note: "two words" });
  log.child("ipc").warn("slow");
  assert.deepEqual(lines, [
    '[2026-11-22T10:00:00Z] INFO [daemon] started name=alice note="two words"',
    "[2026-11-22T10:00:00Z] WARN [ipc] slow",
  ]);
  const json: string[] = [];
  new Logger("relay", { format: "json", sink: (l) => json.push(l), now }).error("boom", { n: 1 });
  assert.deepEqual(JSON.parse(json[0]), {
    ts: "2026-11-22T10:00:00Z",
    level: "error",
    component: "relay",
    msg: "boom",
    n: 1,
  });
});

Deno.test("metrics: Prometheus text with labels escaped and declared counters at 0", () => {
  const m = new MetricsRegistry();
  m.counter("den_x_total", "X.");
  m.counter("den_y_total", "Y.");
  m.inc("den_y_total", { method: 'a"b' }, 2);
  m.gauge("den_g", "G.", () => 42);
  const text = m.render();
  assert.match(text, /^# TYPE den_x_total counter\nden_x_total 0$/m);
  assert.match(text, /^den_y_total\{method="a\\"b"\} 2$/m);
  assert.match(text, /^den_g 42$/m);
  assert.throws(() => m.inc("den_unknown"), /not declared/);
});

Deno.test("metrics: a gauge can report one value per label set", () => {
  const m = new MetricsRegistry();
  m.gauge("den_sessions", "Sessions by state.", () => [[{ state: "connected" }, 3], [
    { state: "down" },
    1,
  ]]);
  assert.match(
    m.render(),
    /^den_sessions\{state="connected"\} 3\nden_sessions\{state="down"\} 1$/m,
  );
});
