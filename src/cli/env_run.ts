/** `den run`-style execution: a child process that sees the team's secrets as env variables. */

/** Signals a user or supervisor may send to us that really mean "tell the child". */
const FORWARDED: readonly Deno.Signal[] = Object.freeze([
  "SIGINT",
  "SIGTERM",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
]);

/** Linux numbers, for the shell convention of exiting 128+n when a child dies from signal n. */
const SIGNAL_NUMBERS: Readonly<Partial<Record<Deno.Signal, number>>> = Object.freeze({
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
});

/**
 * Runs cmd[0] with args, the current environment plus `vars` (vars win), stdin/stdout/stderr
 * inherited; forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 to the child while it
 * runs (removing the listeners after); resolves with the exit code the caller should exit with:
 * the child's code, or 128+signal number when the child died from a signal. A command that is
 * not found → throws an Error whose message names the command and says to check PATH.
 */
export async function runWithEnv(cmd: string[], vars: Record<string, string>): Promise<number> {
  if (cmd.length === 0 || cmd[0] === "") throw new Error("no command given to run");
  const [program, ...args] = cmd;

  let child: Deno.ChildProcess | undefined;
  const listeners: [Deno.Signal, () => void][] = [];
  try {
    // Listen before spawning: a signal that lands while the child starts is then queued and
    // forwarded, instead of killing us with the default action and orphaning the child.
    for (const sig of FORWARDED) {
      const fn = () => {
        try {
          // Callbacks run from the event loop, so `child` is set by then.
          child?.kill(sig);
        } catch {
          // The child exited between the signal and the forward: nothing left to tell.
        }
      };
      try {
        Deno.addSignalListener(sig, fn);
      } catch {
        // Windows can only listen for SIGINT; a signal we cannot receive needs no forwarding.
        continue;
      }
      listeners.push([sig, fn]);
    }
    child = spawn(program, args, vars);
    return exitCode(await child.status);
  } finally {
    // Left in place, they would keep swallowing the caller's own Ctrl-C.
    for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
  }
}

function spawn(program: string, args: string[], vars: Record<string, string>): Deno.ChildProcess {
  try {
    return new Deno.Command(program, {
      args,
      // Deno merges `env` over the inherited environment unless clearEnv is set.
      env: vars,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(
        `command not found: ${program}; check that it is installed and on your PATH`,
        { cause: err },
      );
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new Error(
        `cannot run ${program}: permission denied; check that it is an executable file`,
        { cause: err },
      );
    }
    throw err;
  }
}

function exitCode(status: Deno.CommandStatus): number {
  if (status.signal === null) return status.code;
  // Deno already reports 128+n in `code`; the table makes that our contract, not its detail.
  const n = SIGNAL_NUMBERS[status.signal];
  return n === undefined ? status.code : 128 + n;
}
