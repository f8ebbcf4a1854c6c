/**
 * runWithEnv in a real process: a driver script runs `sh -c` children through it, and the tests
 * check what a user's shell would see — variables, stdin, exit codes and forwarded signals.
 */
import assert from "node:assert/strict";

const ENV_RUN_URL = new URL("../../src/cli/env_run.ts", import.meta.url).href;

// Args: a JSON object of vars, then the command. Exit 99 marks an error thrown by runWithEnv.
const DRIVER = `
import { runWithEnv } from ${JSON.stringify(ENV_RUN_URL)};
const [varsJson, ...cmd] = Deno.args;
let code;
try {
  code = await runWithEnv(cmd, JSON.parse(varsJson));
} catch (err) {
  console.error("driver: " + err.message);
  Deno.exit(99);
}
if (Deno.env.get("DRIVER_SIGNAL_SELF")) {
  // With the forwarding listeners removed, this kills the driver itself.
  Deno.kill(Deno.pid, "SIGTERM");
  await new Promise((resolve) => setTimeout(resolve, 5000));
}
Deno.exit(code);
`;

interface Result {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

async function withDriver(fn: (driver: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "den-env-run-" });
  try {
    const driver = `${dir}/driver.ts`;
    await Deno.writeTextFile(driver, DRIVER);
    await fn(driver);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function driverCommand(
  driver: string,
  vars: Record<string, string>,
  cmd: string[],
  opts: { env?: Record<string, string>; stdin?: "piped" | "null" } = {},
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--no-config", driver, JSON.stringify(vars), ...cmd],
    cwd: Deno.cwd(),
    env: opts.env,
    stdin: opts.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
  });
}

async function runDriver(
  driver: string,
  vars: Record<string, string>,
  cmd: string[],
  opts: { env?: Record<string, string>; input?: string } = {},
): Promise<Result> {
  const stdin = opts.input === undefined ? "null" : "piped";
  const child = driverCommand(driver, vars, cmd, { env: opts.env, stdin }).spawn();
  if (opts.input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(opts.input));
    await writer.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    signal: out.signal,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

const sh = (script: string) => ["sh", "-c", script];

Deno.test("runWithEnv: the child sees the vars, and they win over the inherited env", async () => {
  await withDriver(async (driver) => {
    const r = await runDriver(
      driver,
      { FOO: "from vars", MULTI: "a\nb 'c' $d" },
      sh('printf %s "$FOO|$OUTER|$MULTI"'),
      { env: { FOO: "inherited", OUTER: "kept" } },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "from vars|kept|a\nb 'c' $d");
  });
});

Deno.test("runWithEnv: stdin passes through to the child", async () => {
  await withDriver(async (driver) => {
    const input = "hello\nsecond line\n";
    const r = await runDriver(driver, {}, ["cat"], { input });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, input);
  });
});

Deno.test("runWithEnv: the child's exit code passes through", async () => {
  await withDriver(async (driver) => {
    for (const code of [0, 1, 7, 42, 255]) {
      const r = await runDriver(driver, {}, sh(`echo to stderr >&2; exit ${code}`));
      assert.equal(r.code, code, r.stderr);
      assert.equal(r.signal, null);
      assert.equal(r.stderr, "to stderr\n");
    }
  });
});

Deno.test("runWithEnv: a child killed by signal n gives 128+n", async () => {
  await withDriver(async (driver) => {
    for (const [sig, n] of [["KILL", 9], ["TERM", 15], ["USR1", 10], ["HUP", 1]] as const) {
      const r = await runDriver(driver, {}, sh(`kill -${sig} $$`));
      assert.equal(r.code, 128 + n, `SIG${sig}: ${r.stderr}`);
      // The driver itself exited normally with that code; it was not killed.
      assert.equal(r.signal, null);
    }
  });
});

Deno.test("runWithEnv: an unknown command is an error naming it and PATH", async () => {
  await withDriver(async (driver) => {
    const r = await runDriver(driver, {}, ["den-no-such-command-3f9a", "arg"]);
    assert.equal(r.code, 99, r.stderr);
    assert.match(r.stderr, /den-no-such-command-3f9a/);
    assert.match(r.stderr, /PATH/);
  });
});

/**
 * Starts a child that traps `sig` and prints its pid, signals the driver once that line is
 * out, and collects the output.
 */
async function signalThroughDriver(driver: string, sig: Deno.Signal): Promise<Result> {
  const name = sig.slice(3);
  // The loop gives up by itself after ~10 s, so a lost signal can never leave it running.
  const script = `trap 'echo got ${name}; exit 0' ${name}; echo "ready $$"; ` +
    `i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done; echo timeout`;
  const child = driverCommand(driver, {}, sh(script)).spawn();
  let shPid = 0;
  // A lost forward would leave the read below waiting; fail fast and leave nothing behind.
  const guard = setTimeout(() => {
    for (const pid of [child.pid, shPid]) {
      try {
        if (pid) Deno.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }, 5_000);
  try {
    const stderr = new Response(child.stderr).text();
    const dec = new TextDecoder();
    let stdout = "";
    for await (const chunk of child.stdout) {
      stdout += dec.decode(chunk, { stream: true });
      const m = /^ready (\d+)\n/.exec(stdout);
      if (m && !shPid) {
        shPid = Number(m[1]);
        child.kill(sig);
      }
    }
    const status = await child.status;
    return {
      code: status.code,
      signal: status.signal,
      stdout: stdout.replace(/^ready \d+\n/, "ready\n"),
      stderr: await stderr,
    };
  } finally {
    clearTimeout(guard);
  }
}

Deno.test("runWithEnv: SIGTERM sent to the driver reaches the child", async () => {
  await withDriver(async (driver) => {
    const r = await signalThroughDriver(driver, "SIGTERM");
    assert.equal(r.stdout, "ready\ngot TERM\n", r.stderr);
    assert.equal(r.signal, null, "the driver must survive and report the child's exit");
    assert.equal(r.code, 0);
  });
});

Deno.test("runWithEnv: SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are forwarded", async () => {
  await withDriver(async (driver) => {
    for (const sig of ["SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const) {
      const r = await signalThroughDriver(driver, sig);
      assert.equal(r.stdout, `ready\ngot ${sig.slice(3)}\n`, `${sig}: ${r.stderr}`);
      assert.equal(r.signal, null, sig);
      assert.equal(r.code, 0, sig);
    }
  });
});

Deno.test("runWithEnv: the forwarding listeners are removed when the child exits", async () => {
  await withDriver(async (driver) => {
    const r = await runDriver(driver, {}, sh("exit 0"), { env: { DRIVER_SIGNAL_SELF: "1" } });
    assert.equal(r.signal, "SIGTERM", `driver outlived its own SIGTERM: ${r.stderr}`);
  });
});
