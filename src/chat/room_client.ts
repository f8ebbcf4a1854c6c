/**
 * Runs a room chat: the RoomSession state machine between a WebSocket to the relay and a view.
 * Everything lives in this process's memory and is dropped when it ends.
 */
import { Exit } from "../errors.ts";
import { randomBytes } from "../crypto/random.ts";
import { handleChatLine } from "./chat_input.ts";
import { type ChatView, quitOnSignals } from "./chat_view.ts";
import { type ChatEffect, type ChatMode, RoomSession } from "./room_session.ts";

/** How long a closing socket may take to send its last frames. */
const CLOSE_GRACE_MS = 2000;

export interface RoomChatOptions {
  url: string;
  /** From the command line; when absent or invalid an interactive view asks for one. */
  room: string | undefined;
  mode: ChatMode;
  view: ChatView;
  /** Milliseconds to open the WebSocket. */
  connectTimeoutMs?: number;
}

/** Resolves with the exit code: 0 ended normally, 1 relay or network failure, 5 violation. */
export function runRoomChat(opts: RoomChatOptions): Promise<number> {
  return new RoomChat(opts).run();
}

class RoomChat {
  readonly #o: RoomChatOptions;
  readonly #session: RoomSession;
  #ws: WebSocket | null = null;
  #verified = false;
  /** Lines typed before the session could send them (line mode), and pacing retries. */
  readonly #queue: string[] = [];
  #retry: ReturnType<typeof setTimeout> | undefined;
  #inputEnded = false;
  #done!: (code: number) => void;
  #markClosed!: () => void;
  readonly #socketClosed = new Promise<void>((resolve) => this.#markClosed = resolve);

  constructor(opts: RoomChatOptions) {
    this.#o = opts;
    this.#session = new RoomSession({ mode: opts.mode, random: randomBytes, now: Date.now });
  }

  run(): Promise<number> {
    const finished = new Promise<number>((resolve) => this.#done = resolve);
    const quit = () => this.#apply(this.#session.quit());
    const unlisten = quitOnSignals(quit);
    this.#apply(this.#session.begin());
    return finished.finally(() => {
      unlisten();
      clearTimeout(this.#retry);
      this.#o.view.stop();
    });
  }

  #apply(effects: ChatEffect[]): void {
    const view = this.#o.view;
    let connected = false;
    for (const e of effects) {
      switch (e.type) {
        case "state":
          this.#showStatus();
          connected ||= e.state === "CONNECTED";
          break;
        case "ask_room":
          this.#askRoom(e.problem);
          break;
        case "send":
          this.#sendFrame(e.frame);
          break;
        case "message":
          view.incoming("peer", e.text);
          break;
        case "sent":
          view.outgoing(e.text);
          break;
        case "refused":
          view.problem(`not sent: ${e.reason}`);
          break;
        case "notice":
          view.notice(e.text);
          break;
        case "close":
          this.#ws?.close(1000);
          break;
        case "ended": {
          view.notice(`${e.reason}; session destroyed, keys wiped`);
          if (e.violation) view.problem(`session destroyed: ${e.reason}`);
          const code = e.violation ? Exit.verification : e.failed ? Exit.error : Exit.ok;
          if (!this.#ws) this.#markClosed();
          // The last frames (a goodbye) leave before the process may exit.
          const flushed = setTimeout(() => this.#done(code), CLOSE_GRACE_MS);
          this.#socketClosed.then(() => {
            clearTimeout(flushed);
            this.#done(code);
          });
          break;
        }
      }
    }
    // After the batch, so the connection notice comes before the words.
    if (connected) this.#onConnected();
  }

  #askRoom(problem: string | null): void {
    const view = this.#o.view;
    if (problem === null && this.#o.room !== undefined) {
      return this.#apply(this.#session.enterRoom(this.#o.room));
    }
    if (!view.interactive) {
      // No one to ask: say what is wrong, as any usage error would.
      view.problem(problem ?? "a room code is needed: den chat ROOM --relay URL");
      return this.#done(Exit.usage);
    }
    if (problem !== null) view.problem(problem);
    const answer = view.ask("Room code (8-16 capital letters and digits): ");
    if (answer === null) return this.#apply(this.#session.quit());
    this.#apply(this.#session.enterRoom(answer.trim()));
  }

  #sendFrame(frame: string): void {
    if (this.#ws) {
      if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(frame);
      return;
    }
    this.#connect(frame);
  }

  /** The first frame is the JOIN: the connection opens only once a valid room code is known. */
  #connect(join: string): void {
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.#o.url);
    } catch (err) {
      this.#markClosed();
      return this.#apply(this.#session.connectionClosed(`cannot open ${this.#o.url}: ${err}`));
    }
    this.#ws = ws;
    const timer = setTimeout(() => ws.close(), this.#o.connectTimeoutMs ?? 15_000);
    let opened = false;
    ws.onopen = () => {
      opened = true;
      clearTimeout(timer);
      ws.send(join);
      this.#startInput();
    };
    ws.onmessage = (ev) => {
      const text = typeof ev.data === "string" ? ev.data : "(a binary frame)";
      this.#apply(this.#session.frame(text));
    };
    ws.onclose = (ev) => {
      clearTimeout(timer);
      this.#markClosed();
      const why = opened
        ? `${ev.reason || "closed"} (code ${ev.code})`
        : `could not connect to ${this.#o.url}`;
      this.#apply(this.#session.connectionClosed(why));
    };
  }

  #startInput(): void {
    const view = this.#o.view;
    view.start({
      line: (text) => this.#line(text),
      quit: () => this.#apply(this.#session.quit()),
      end: () => {
        this.#inputEnded = true;
        this.#flush();
      },
    });
  }

  #line(text: string): void {
    const view = this.#o.view;
    handleChatLine(text, view, {
      message: (text) => {
        if (view.interactive) return this.#apply(this.#session.send(text));
        // Scripts may pipe lines in before the other person arrives, or faster than the rate.
        this.#queue.push(text);
        this.#flush();
      },
      verify: () => this.#showWords(),
      verified: () => {
        if (!this.#session.verifyWords()) return view.problem("nothing to verify yet");
        this.#verified = true;
        this.#showStatus();
        view.notice("marked as verified: the words matched");
      },
      quit: () => this.#apply(this.#session.quit()),
    });
  }

  #showWords(): void {
    const words = this.#session.verifyWords();
    if (!words) return this.#o.view.problem("no keys yet: wait until the chat is connected");
    this.#o.view.notice(
      `verify: ${words.join(" ")}\ncompare them with the other person by voice; ` +
        `if they match, no one is in the middle: type /verified`,
    );
  }

  #onConnected(): void {
    if (this.#o.mode === "compat") {
      this.#o.view.notice("--compat: no post-quantum protection and no identity check");
    }
    this.#showWords();
    this.#flush();
  }

  /** Sends queued lines at the rate the session allows; quits after the last one if input ended. */
  #flush(): void {
    clearTimeout(this.#retry);
    while (this.#queue.length > 0 && this.#session.state === "CONNECTED") {
      const text = this.#queue.shift()!;
      const effects = this.#session.send(text);
      const refused = effects.find((e) => e.type === "refused");
      if (refused?.type === "refused" && refused.retry) {
        this.#queue.unshift(text);
        this.#retry = setTimeout(() => this.#flush(), 250);
        return;
      }
      this.#apply(effects);
    }
    if (this.#inputEnded && this.#session.state === "CONNECTED") {
      this.#apply(this.#session.quit());
    }
  }

  #showStatus(): void {
    this.#o.view.status({
      state: this.#session.state,
      peer: "",
      where: `room ${this.#session.room ?? "?"}`,
      trust: this.#session.state !== "CONNECTED"
        ? ""
        : this.#verified
        ? "verified"
        : "not verified: /verify",
    });
  }
}
