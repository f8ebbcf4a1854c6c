/**
 * Where a chat is shown and typed: a full terminal (raw mode, a status line and an input line
 * that incoming messages never overwrite) or plain lines for pipes and scripts. Room chat and
 * team chat drive the same two views.
 */
import { charCount, MAX_MESSAGE_CHARS } from "./states.ts";
import { displayLines, headColumns, tailColumns } from "./display_text.ts";
import { LineEditor } from "./line_editor.ts";

export interface ChatStatus {
  state: string;
  /** Who the chat is with, as shown. */
  peer: string;
  /** e.g. "room K7P2M9QX" or "team chat". */
  where: string;
  /** How far the other side is authenticated, e.g. "not verified: /verify". */
  trust: string;
}

export interface ChatInput {
  line(text: string): void;
  quit(): void;
  /** stdin ended (line mode only): send what is queued, then quit. */
  end(): void;
}

export interface ChatView {
  /** A person is at a terminal (raw input, a status line). */
  readonly interactive: boolean;
  start(input: ChatInput): void;
  notice(text: string): void;
  incoming(from: string, text: string): void;
  outgoing(text: string): void;
  problem(text: string): void;
  status(status: ChatStatus): void;
  /** Asks for a line before the chat starts (a room code); null when no one can answer. */
  ask(question: string): string | null;
  stop(): void;
}

const encoder = new TextEncoder();

/**
 * Writes to the terminal or a pipe. When the reader goes away (`den chat … | head -1`), the chat
 * ends like a /quit instead of failing on the next line.
 */
class Output {
  #gone = false;
  #onGone: (() => void) | null = null;

  whenGone(fn: () => void): void {
    this.#onGone = fn;
    if (this.#gone) fn();
  }

  write(file: { writeSync(p: Uint8Array): number }, text: string): void {
    if (this.#gone) return;
    const bytes = encoder.encode(text);
    try {
      let off = 0;
      while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
    } catch (err) {
      if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
      this.#gone = true;
      this.#onGone?.();
    }
  }
}

/**
 * Runs `quit` on SIGINT and SIGTERM (a chat ends like /quit, telling the other side); returns
 * the function that removes the listeners.
 */
export function quitOnSignals(quit: () => void): () => void {
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? [] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, quit);
  return () => {
    for (const s of signals) Deno.removeSignalListener(s, quit);
  };
}

/** NO_COLOR (https://no-color.org): present and not empty disables color. */
export function colorWanted(): boolean {
  return !Deno.env.get("NO_COLOR") && Deno.stdout.isTerminal();
}

/** Plain lines: `peer: text` for messages, `* text` for notices, problems on stderr. */
export class LineView implements ChatView {
  readonly interactive = false;
  readonly #out = new Output();

  start(input: ChatInput): void {
    this.#out.whenGone(() => input.quit());
    (async () => {
      const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
      let rest = "";
      for await (const chunk of lines) {
        rest += chunk;
        let nl: number;
        while ((nl = rest.indexOf("\n")) >= 0) {
          input.line(rest.slice(0, nl).replace(/\r$/, ""));
          rest = rest.slice(nl + 1);
        }
      }
      if (rest) input.line(rest);
      input.end();
    })().catch(() => input.end());
  }

  notice(text: string): void {
    for (const line of displayLines(text)) this.#out.write(Deno.stdout, `* ${line}\n`);
  }

  incoming(from: string, text: string): void {
    for (const line of displayLines(text)) this.#out.write(Deno.stdout, `${from}: ${line}\n`);
  }

  outgoing(_text: string): void {}

  problem(text: string): void {
    this.#out.write(Deno.stderr, `den: ${text}\n`);
  }

  status(_status: ChatStatus): void {}

  ask(_question: string): string | null {
    return null;
  }

  stop(): void {}
}

const CLEAR_LINE = "\r\x1b[2K";
const UP = "\x1b[1A";

/**
 * The terminal view. The bottom two rows are the footer: a status line and the input line.
 * Anything printed first erases the footer, writes its lines, then draws the footer again, so a
 * message arriving mid-typing lands above what is being typed.
 */
export class TerminalView implements ChatView {
  readonly interactive = true;
  readonly #color: boolean;
  readonly #editor = new LineEditor(MAX_MESSAGE_CHARS);
  readonly #out = new Output();
  #status: ChatStatus | null = null;
  #footer = false;
  #printed = false;
  #raw = false;
  #onResize = () => this.#redraw();

  constructor(color: boolean) {
    this.#color = color;
  }

  start(input: ChatInput): void {
    this.#out.whenGone(() => input.quit());
    Deno.stdin.setRaw(true);
    this.#raw = true;
    try {
      Deno.addSignalListener("SIGWINCH", this.#onResize);
    } catch { /* not on this platform */ }
    this.#redraw();
    (async () => {
      const buf = new Uint8Array(4096);
      while (this.#raw) {
        const n = await Deno.stdin.read(buf);
        if (n === null) return input.quit();
        this.#printed = false;
        for (const action of this.#editor.feed(buf.subarray(0, n))) {
          if (action.type === "submit") {
            if (action.text.trim() !== "") input.line(action.text);
          } else if (action.type === "quit") input.quit();
          else if (action.type === "bell") this.#out.write(Deno.stdout, "\x07");
          else this.#redraw();
        }
        // A line printed meanwhile (our own message) already drew the footer as it is now.
        if (this.#raw && !this.#printed) this.#redraw();
      }
    })().catch(() => input.quit());
  }

  notice(text: string): void {
    this.#print(displayLines(text).map((l) => this.#paint("2", `  * ${l}`)));
  }

  incoming(from: string, text: string): void {
    this.#message(from, text, "36");
  }

  outgoing(text: string): void {
    this.#message("you", text, "32");
  }

  problem(text: string): void {
    this.#print(displayLines(text).map((l) => this.#paint("31", `  ! ${l}`)));
  }

  status(status: ChatStatus): void {
    this.#status = status;
    this.#redraw();
  }

  ask(question: string): string | null {
    return prompt(question);
  }

  stop(): void {
    this.#out.write(Deno.stdout, this.#clearFooter());
    if (this.#raw) {
      this.#raw = false;
      try {
        Deno.stdin.setRaw(false);
      } catch { /* stdin gone */ }
    }
    try {
      Deno.removeSignalListener("SIGWINCH", this.#onResize);
    } catch { /* never added */ }
  }

  #message(from: string, text: string, color: string): void {
    const time = new Date().toTimeString().slice(0, 5);
    const label = from.padEnd(Math.max(4, charCount(from)));
    const indent = " ".repeat(charCount(time) + 1 + charCount(label) + 3);
    this.#print(
      displayLines(text).map((line, i) =>
        i === 0
          ? `${this.#paint("2", time)} ${this.#paint(color, label)} │ ${line}`
          : `${indent}${line}`
      ),
    );
  }

  #paint(sgr: string, text: string): string {
    return this.#color ? `\x1b[${sgr}m${text}\x1b[0m` : text;
  }

  /** One write per change, so the terminal never shows the footer half drawn. */
  #print(lines: string[]): void {
    const body = lines.map((l) => `${l}\r\n`).join("");
    this.#printed = true;
    this.#out.write(
      Deno.stdout,
      this.#clearFooter() + body + (this.#raw ? this.#footerText() : ""),
    );
  }

  #redraw(): void {
    this.#print([]);
  }

  #clearFooter(): string {
    if (!this.#footer) return "";
    this.#footer = false;
    return `${CLEAR_LINE}${UP}${CLEAR_LINE}`;
  }

  #footerText(): string {
    const width = terminalWidth();
    const s = this.#status;
    const parts = s ? [s.state, s.where, s.peer, s.trust] : ["starting"];
    const count = this.#editor.length > MAX_MESSAGE_CHARS - 100
      ? ` · ${this.#editor.length}/${MAX_MESSAGE_CHARS}`
      : "";
    const line = headColumns(
      ` den chat · ${parts.filter(Boolean).join(" · ")}${count} · /help `,
      width - 1,
    );
    const status = this.#color
      ? `\x1b[7m${line.padEnd(width - 1)}\x1b[0m`
      : `[${headColumns(line.trim(), width - 3)}]`;
    const promptText = "> ";
    const room = Math.max(8, width - 1 - promptText.length);
    const shown = tailColumns(this.#editor.text, room);
    const back = Math.min(this.#editor.afterCursor, charCount(shown));
    this.#footer = true;
    return `${status}\r\n${promptText}${shown}${back > 0 ? `\x1b[${back}D` : ""}`;
  }
}

function terminalWidth(): number {
  try {
    return Math.max(20, Deno.consoleSize().columns);
  } catch {
    return 80;
  }
}
