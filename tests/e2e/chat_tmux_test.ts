/**
 * `den chat` in real terminals: two clients, each in its own pane of a private tmux server, join
 * one room through a real relay. What a person sees is read back with `tmux capture-pane`: the
 * status line, messages arriving while a line is half typed (it stays put), unicode both ways,
 * matching safety words, /verified, a third person refused, /help, and /quit ending both sides.
 */
import assert from "node:assert/strict";
import { den, denArgv, startRelay } from "../../scripts/lib/den_process.ts";
import { shellLine, shellQuote } from "../../src/util/shell_quote.ts";

async function tmuxMissing(): Promise<string | null> {
  try {
    const out = await new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
      .output();
    return out.success ? null : "`tmux -V` failed";
  } catch {
    return "tmux not installed";
  }
}

const why = await tmuxMissing();
if (why) console.warn(`SKIPPED chat tmux e2e: ${why}`);

const WIDTH = 110;
const HEIGHT = 30;
const POLL_MS = 100;
const WAIT_MS = 20_000;

/** The environment `denCommand` gives den (minus NO_COLOR, which each pane decides). */
function baseEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  for (const k of ["RUST_BACKTRACE", "DEN_HOME", "DEN_PASSPHRASE", "NO_COLOR", "TMUX"]) {
    delete env[k];
  }
  return { ...env, LANG: "C.UTF-8", LC_ALL: "C.UTF-8" };
}

/** A private tmux server (its own socket name and an empty config): never a user's tmux. */
class Tmux {
  readonly socket = `den-test-${crypto.randomUUID().slice(0, 8)}`;
  readonly #conf: string;

  constructor(conf: string) {
    this.#conf = conf;
  }

  async run(...args: string[]): Promise<string> {
    const out = await new Deno.Command("tmux", {
      args: ["-u", "-L", this.socket, "-f", this.#conf, ...args],
      env: baseEnv(),
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    if (!out.success) {
      throw new Error(`tmux ${args.join(" ")} failed: ${dec.decode(out.stderr)}`);
    }
    return dec.decode(out.stdout);
  }

  /**
   * A detached session running `argv` (shell-quoted) in a WIDTH×HEIGHT pane. When den ends, the
   * pane's shell writes den's exit status to `exitFile` and lingers a moment before the pane
   * closes. (tmux 3.3 was seen to drop a dying pane's last output, or never fill in
   * #{pane_dead_status}, when two panes ended at once; a file and a pause avoid both.)
   */
  async session(name: string, argv: string[], color: boolean, exitFile: string): Promise<void> {
    const env = ["env", "-u", "RUST_BACKTRACE", "-u", "DEN_HOME", "-u", "DEN_PASSPHRASE"];
    env.push(...(color ? ["-u", "NO_COLOR"] : ["NO_COLOR=1"]));
    const command = shellLine([...env, ...argv]);
    const line = `${command}; echo $? > ${shellQuote(exitFile)}; sleep 0.3`;
    await this.run(
      "new-session",
      "-d",
      "-s",
      name,
      "-x",
      String(WIDTH),
      "-y",
      String(HEIGHT),
      line,
    );
  }

  /** The pane's history and screen as plain text (no -e: no escape sequences), lines joined. */
  async screen(name: string): Promise<string> {
    return stripAnsi(await this.run("capture-pane", "-p", "-J", "-S", "-", "-t", name));
  }

  /** The visible screen with its escape sequences (colors) kept. */
  async styled(name: string): Promise<string> {
    return await this.run("capture-pane", "-p", "-e", "-t", name);
  }

  async keys(name: string, text: string, enter = false): Promise<void> {
    if (text) await this.run("send-keys", "-t", name, "-l", text);
    if (enter) await this.run("send-keys", "-t", name, "Enter");
  }

  /** The pane's process has ended: its pty closed (remain-on-exit keeps the pane readable). */
  async dead(name: string): Promise<boolean> {
    return (await this.run("list-panes", "-t", name, "-F", "#{pane_dead}")).trim() === "1";
  }

  /** Ends the server, its panes' processes with it, and removes its socket file. */
  async kill(): Promise<void> {
    const path = await this.run("display-message", "-p", "#{socket_path}").catch(() => "");
    await this.run("kill-server").catch(() => {});
    if (path.trim()) await Deno.remove(path.trim()).catch(() => {});
  }
}

function stripAnsi(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, "");
}

/** The footer: the last status line drawn and the input line under it ("" when none). */
function footer(screen: string): { status: string; input: string } {
  const lines = screen.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i].includes("den chat · ")) {
      return { status: lines[i], input: (lines[i + 1] ?? "").trimEnd() };
    }
  }
  return { status: "", input: "" };
}

type Footer = ReturnType<typeof footer>;

/** A screen whose footer is drawn (below everything printed so far) and satisfies `ok`. */
function settled(ok: (f: Footer, screen: string) => boolean): (screen: string) => boolean {
  return (screen) => {
    const f = footer(screen);
    return f.status !== "" && f.input.startsWith(">") && ok(f, screen);
  };
}

const connected = (screen: string) => /· CONNECTED ·/.test(footer(screen).status);

function safetyWords(screen: string): string[] {
  const all = [...screen.matchAll(/verify: ([^\n]*)/g)];
  return all.length === 0 ? [] : all[all.length - 1][1].trim().split(/\s+/);
}

const count = (screen: string, text: string) => screen.split(text).length - 1;

Deno.test({
  name:
    "chat e2e in tmux: two terminals talk through a relay; a third is refused; /quit ends both" +
    (why ? ` [SKIPPED: ${why}]` : ""),
  ignore: why !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "den-e2e-chat-tmux-" });
    const conf = `${dir}/tmux.conf`;
    await Deno.writeTextFile(
      conf,
      [
        "set-option -g status off",
        "set-option -sg escape-time 0",
        "set-option -g history-limit 5000",
        "set-option -wg remain-on-exit on",
        "set-option -g default-shell /bin/sh",
        "",
      ].join("\n"),
    );
    const tmux = new Tmux(conf);
    const relay = await startRelay();
    const room = `TMUX${crypto.getRandomValues(new Uint32Array(1))[0].toString(36).toUpperCase()}`
      .padEnd(10, "X").slice(0, 16);
    const A = "a", B = "b";
    const exitFile = (name: string) => `${dir}/${name}.exit`;

    const screens = async () => {
      const [a, b] = await Promise.all(
        [tmux.screen(A), tmux.screen(B)].map((p) => p.catch((e) => `(no capture: ${e})`)),
      );
      return `\n--- A (NO_COLOR=1) ---\n${a}\n--- B (color) ---\n${b}\n---`;
    };
    /**
     * Polls NAME's screen (or what `capture` reads) until `ok` holds. Output reaches tmux in
     * pieces (erase the footer, print, draw it again), so assertions wait for a settled screen.
     */
    const until = async (
      what: string,
      name: string,
      ok: (screen: string) => boolean,
      capture = (n: string) => tmux.screen(n),
    ): Promise<string> => {
      const end = Date.now() + WAIT_MS;
      for (;;) {
        const s = await capture(name);
        if (ok(s)) return s;
        if (Date.now() >= end) break;
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      assert.fail(`timed out after ${WAIT_MS} ms waiting for ${what}${await screens()}`);
    };
    /** Waits for den in NAME to exit and its pane to close; den's exit status. */
    const untilEnded = async (name: string, what: string): Promise<string> => {
      const end = Date.now() + WAIT_MS;
      for (;;) {
        const status = await Deno.readTextFile(exitFile(name)).catch(() => "");
        if (status.endsWith("\n") && await tmux.dead(name)) return status.trim();
        if (Date.now() >= end) break;
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      assert.fail(`timed out after ${WAIT_MS} ms waiting until ${what}${await screens()}`);
    };

    try {
      const chat = ["chat", room, "--relay", relay.url];
      await tmux.session(A, denArgv(chat), false, exitFile(A));
      await tmux.session(B, denArgv(chat), true, exitFile(B));
      await until("A connected", A, connected);
      await until("B connected", B, connected);
      await until(
        "A's plain status line (NO_COLOR=1) naming the room, not verified",
        A,
        settled((f) =>
          f.status === `[den chat · CONNECTED · room ${room} · not verified: /verify · /help]`
        ),
      );
      await until(
        "B's status line without brackets (color)",
        B,
        settled((f) =>
          f.status.trimEnd() ===
            ` den chat · CONNECTED · room ${room} · not verified: /verify · /help`
        ),
      );
      // Color only where NO_COLOR is unset: B's status line is drawn in reverse video.
      await until("A without color", A, (s) => !s.includes("\x1b["), (n) => tmux.styled(n));
      await until(
        "B's status line in reverse video",
        B,
        // deno-lint-ignore no-control-regex
        (s) => /\x1b\[(?:[0-9;]*;)?7m[^\n]* den chat · CONNECTED/.test(s),
        (n) => tmux.styled(n),
      );

      // A half-typed line survives a message arriving.
      await tmux.keys(A, "half typed");
      await until("A's input line shows the typing", A, (s) => footer(s).input === "> half typed");
      await tmux.keys(B, "hello from B", true);
      await until("B shows its own message", B, (s) => /\d\d:\d\d you {2}│ hello from B/.test(s));
      await until(
        "A shows B's message above the footer, CONNECTED, the typing kept: > half typed",
        A,
        settled((f, s) => {
          const lines = s.split("\n");
          const at = lines.findLastIndex((l) => /\d\d:\d\d peer │ hello from B$/.test(l));
          return at >= 0 && at < lines.findLastIndex((l) => l.includes("den chat · ")) &&
            f.input === "> half typed" && connected(s);
        }),
      );

      await tmux.keys(A, " and finished", true);
      await until("B shows A's line", B, (s) => /peer │ half typed and finished/.test(s));
      await until(
        "A echoes its line and empties the input line",
        A,
        settled((f, s) => f.input === ">" && /you {2}│ half typed and finished/.test(s)),
      );

      const uniA = "grüße aus Köln — ☕ 日本語 ✓";
      const uniB = "привет · ελληνικά · ñandú · 中文";
      await tmux.keys(A, uniA, true);
      await until("B shows A's unicode", B, (s) => s.includes(`peer │ ${uniA}`));
      await until("A echoes its unicode", A, (s) => s.includes(`you  │ ${uniA}`));
      await tmux.keys(B, uniB, true);
      await until("A shows B's unicode", A, (s) => s.includes(`peer │ ${uniB}`));
      await until("B echoes its unicode", B, (s) => s.includes(`you  │ ${uniB}`));

      // The safety words match.
      const before = {
        a: count(await tmux.screen(A), "verify: "),
        b: count(await tmux.screen(B), "verify: "),
      };
      await tmux.keys(A, "/verify", true);
      await tmux.keys(B, "/verify", true);
      const sixNew = (n: number) => (s: string) =>
        count(s, "verify: ") > n && safetyWords(s).length === 6;
      const wa = safetyWords(await until("A's six words", A, sixNew(before.a)));
      const wb = safetyWords(await until("B's six words", B, sixNew(before.b)));
      assert.deepEqual(wa, wb, `the words differ${await screens()}`);

      await tmux.keys(A, "/verified", true);
      await until(
        "A's status says verified (not 'not verified') after its notice",
        A,
        settled((f, s) =>
          /· verified ·/.test(f.status) && !f.status.includes("not verified") &&
          s.includes("  * marked as verified: the words matched")
        ),
      );
      await until("B still not verified", B, settled((f) => f.status.includes("not verified")));

      // A third person is refused; the two stay connected.
      const c = await den(["chat", room, "--relay", relay.url], { stdin: "" });
      const cOut = c.stdout + c.stderr;
      if (c.code === 0 || !/room .* is full/.test(cOut)) {
        assert.fail(`C should be refused (room full), exited ${c.code}: ${cOut}${await screens()}`);
      }
      await tmux.keys(B, "still here", true);
      await until("A still receives", A, settled((_, s) => /peer │ still here/.test(s)));
      await until("A still connected", A, settled((_, s) => connected(s)));
      await until("B still connected", B, settled((_, s) => connected(s)));

      // /help lists the commands.
      await tmux.keys(B, "/help", true);
      await until(
        "B's /help list",
        B,
        (s) =>
          /\* \/verify +show the six safety words/.test(s) &&
          /\* \/verified +mark the words/.test(s) && /\* \/quit +end the chat/.test(s),
      );

      // /quit in A ends A and tells B, whose chat ends too.
      await tmux.keys(A, "/quit", true);
      const aExit = await untilEnded(A, "A's process ends after /quit");
      const a3 = await tmux.screen(A);
      if (aExit !== "0" || !a3.includes("  * you ended the chat; session destroyed, keys wiped")) {
        assert.fail(`A should end with status 0 and say so, got ${aExit}${await screens()}`);
      }
      if (footer(a3).status !== "") assert.fail(`A's footer left on screen${await screens()}`);
      await until(
        "B hears the chat ended",
        B,
        (s) => s.includes("  * the other person ended the chat; session destroyed, keys wiped"),
      );
      const bExit = await untilEnded(B, "B's process ends after the other person quit");
      if (bExit !== "0") assert.fail(`B ended with ${bExit}${await screens()}`);
    } finally {
      await tmux.kill();
      await relay.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
