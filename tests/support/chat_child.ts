/**
 * A `den chat …` child process driven through pipes: lines written to its stdin, its stdout and
 * stderr collected and read line by line. Used by the chat integration tests (line mode against
 * a relay, the compat wire format, team chat between daemons).
 */
import { denCommand, waitFor } from "../../scripts/lib/den_process.ts";

/** The longest any single wait takes unless told otherwise. */
const WAIT = 15_000;

export interface ChatChildOptions {
  /** Extra environment for the child (on top of what denCommand passes). */
  env?: Record<string, string>;
  /** The child's working directory. */
  cwd?: string;
  /** A label for errors and describe(); by default the arguments. */
  name?: string;
}

export interface ChatExit {
  code: number;
  stdout: string;
  stderr: string;
}

/** Complete lines of `text`: an unfinished last line (or "" after the final newline) is left. */
function completeLines(text: string): string[] {
  return text.split("\n").slice(0, -1);
}

/** Cuts a long output to its start and end. */
function cut(s: string): string {
  return s.length > 3000 ? `${s.slice(0, 1500)}\n…\n${s.slice(-1500)}` : s;
}

/** `den chat ARGS…` with piped stdin/stdout/stderr. */
export class ChatChild {
  readonly name: string;
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #stdinClosed = false;
  #stdout = "";
  #stderr = "";
  /** Lines of stdout / stderr already taken by waitLine / waitErr. */
  readonly #taken = { stdout: 0, stderr: 0 };
  #exit: Deno.CommandStatus | undefined;
  #drainedDone = false;
  readonly #drained: Promise<void>;
  readonly #status: Promise<Deno.CommandStatus>;

  constructor(args: string[], opts: ChatChildOptions = {}) {
    this.name = opts.name ?? args.join(" ");
    this.#child = denCommand(["chat", ...args], { stdin: "", env: opts.env, cwd: opts.cwd })
      .spawn();
    this.#stdin = this.#child.stdin.getWriter();
    const collect = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
      for await (const text of s.pipeThrough(new TextDecoderStream())) add(text);
    };
    this.#drained = Promise.all([
      collect(this.#child.stdout, (t) => this.#stdout += t),
      collect(this.#child.stderr, (t) => this.#stderr += t),
    ]).then(() => {
      this.#drainedDone = true;
    });
    this.#status = this.#child.status.then((s) => this.#exit = s);
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Complete stdout lines so far. */
  get lines(): string[] {
    return completeLines(this.#stdout);
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** The label, the exit status and the output so far (long output cut), for error messages. */
  describe(): string {
    return `den chat ${this.name}: exit ${JSON.stringify(this.#exit)}\n--- stdout\n${
      cut(this.#stdout)
    }--- stderr\n${cut(this.#stderr)}`;
  }

  /** Waits until `probe` holds; a timeout or an error thrown by `probe` comes with describe(). */
  async #until(what: string, probe: () => boolean, timeoutMs: number): Promise<void> {
    try {
      await waitFor(what, () => Promise.resolve(probe()), timeoutMs);
    } catch (err) {
      throw new Error(`den chat ${this.name}: ${(err as Error).message}\n${this.describe()}`);
    }
  }

  /** Waits for the next complete line of `which` (after those taken) matching `re`; takes it. */
  async #take(which: "stdout" | "stderr", re: RegExp, timeoutMs: number): Promise<string> {
    let found = "";
    await this.#until(`a ${which} line ${re}`, () => {
      const lines = completeLines(which === "stdout" ? this.#stdout : this.#stderr);
      for (let i = this.#taken[which]; i < lines.length; i++) {
        if (re.test(lines[i])) {
          this.#taken[which] = i + 1;
          found = lines[i];
          return true;
        }
      }
      // All output read and the process gone: the line will not come.
      if (this.#drainedDone && this.#exit) throw new Error(`exited before printing ${re}`);
      return false;
    }, timeoutMs);
    return found;
  }

  /** Waits for the next stdout line (after those already taken) matching `re`, and takes it. */
  waitLine(re: RegExp, timeoutMs = WAIT): Promise<string> {
    return this.#take("stdout", re, timeoutMs);
  }

  /** Waits for the next stderr line (after those already taken) matching `re`, and takes it. */
  waitErr(re: RegExp, timeoutMs = WAIT): Promise<string> {
    return this.#take("stderr", re, timeoutMs);
  }

  /** Writes one line to den's stdin. */
  writeLine(line: string): Promise<void> {
    return this.writeLines(line);
  }

  /** Writes lines to den's stdin in one write. */
  async writeLines(...lines: string[]): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(lines.map((l) => `${l}\n`).join("")));
  }

  /** Closes den's stdin (EOF). */
  async closeStdin(): Promise<void> {
    if (this.#stdinClosed) return;
    this.#stdinClosed = true;
    try {
      await this.#stdin.close();
    } catch { /* den may already be gone */ }
  }

  /** Waits (bounded) for den to exit and its output to be fully read. */
  async exited(timeoutMs = WAIT): Promise<ChatExit> {
    await this.#until("the exit", () => this.#exit !== undefined && this.#drainedDone, timeoutMs);
    return { code: this.#exit!.code, stdout: this.#stdout, stderr: this.#stderr };
  }

  /** Makes sure the process is gone (for finally blocks). */
  async kill(): Promise<void> {
    if (!this.#exit) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    await this.closeStdin();
    await this.#status;
    await this.#drained;
  }
}
