/**
 * `den chat @MEMBER`: a chat window on the local daemon. Messages go out with chat.send; a long
 * poll (chat.poll) brings the teammate's messages and presence. Nothing is written to disk.
 */
import { DenError, Exit } from "../errors.ts";
import { callDaemon, IpcClient } from "../ipc/client.ts";
import type { VerifyResult } from "../ipc/results.ts";
import { SerialQueue } from "../util/serial_queue.ts";
import { handleChatLine } from "./chat_input.ts";
import { type ChatView, quitOnSignals } from "./chat_view.ts";
import type { ChatPoll, ChatSendResult } from "./member_service.ts";
import { charCount, MAX_MESSAGE_CHARS } from "./states.ts";

export interface MemberChatOptions {
  socket: string;
  member: string;
  view: ChatView;
}

const POLL_WAIT_MS = 20_000;

export async function runMemberChat(o: MemberChatOptions): Promise<number> {
  // Resolves the name (and fails with the daemon's message) before any window opens.
  const first = await callDaemon(o.socket, "chat.poll", { member: o.member }) as ChatPoll;
  return new MemberChat(o, first).run();
}

class MemberChat {
  readonly #o: MemberChatOptions;
  readonly #peer: string;
  readonly #fingerprint: string;
  readonly #sends = new SerialQueue();
  #online: boolean;
  #after = 0;
  #pendingSends = 0;
  #inputEnded = false;
  #toldUnseen = false;
  #stopped = false;
  #done!: (code: number) => void;
  /** What arrived while no window was open, shown after the greeting. */
  readonly #backlog: ChatPoll;

  constructor(o: MemberChatOptions, first: ChatPoll) {
    this.#o = o;
    this.#peer = first.peer;
    this.#fingerprint = first.fingerprint;
    this.#online = first.online;
    this.#backlog = first;
  }

  run(): Promise<number> {
    const finished = new Promise<number>((resolve) => this.#done = resolve);
    const view = this.#o.view;
    const quit = () => this.#finish(Exit.ok);
    const unlisten = quitOnSignals(quit);
    view.notice(
      `team chat with ${this.#peer}: end-to-end encrypted in the peer session, kept in memory ` +
        `only. ${this.#online ? `${this.#peer} is online.` : `${this.#peer} is offline.`}`,
    );
    this.#show(this.#backlog.messages);
    // A new window starts after what earlier windows read, not at the first message held.
    this.#after = Math.max(this.#after, this.#backlog.last);
    this.#status();
    view.start({
      line: (text) => this.#line(text),
      quit,
      end: () => {
        this.#inputEnded = true;
        this.#maybeEnd();
      },
    });
    this.#pollLoop();
    return finished.finally(() => {
      unlisten();
      view.stop();
    });
  }

  #finish(code: number): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#done(code);
  }

  async #pollLoop(): Promise<void> {
    let client: IpcClient | null = null;
    try {
      client = await IpcClient.connect(this.#o.socket);
      while (!this.#stopped) {
        const r = await client.request("chat.poll", {
          member: this.#fingerprint,
          after: this.#after,
          wait_ms: POLL_WAIT_MS,
        }, POLL_WAIT_MS + 10_000) as ChatPoll;
        if (this.#stopped) break;
        this.#show(r.messages);
        this.#after = Math.max(this.#after, r.last);
        if (r.online !== this.#online) {
          this.#online = r.online;
          this.#o.view.notice(`${this.#peer} is ${r.online ? "online" : "offline"}`);
          this.#status();
        }
      }
    } catch (err) {
      if (this.#stopped) return;
      this.#o.view.problem(`lost the daemon: ${err instanceof Error ? err.message : err}`);
      this.#finish(Exit.error);
    } finally {
      client?.close();
    }
  }

  #show(messages: ChatPoll["messages"]): void {
    for (const m of messages) {
      this.#o.view.incoming(this.#peer, m.text);
      this.#after = Math.max(this.#after, m.seq);
    }
  }

  #line(text: string): void {
    handleChatLine(text, this.#o.view, {
      message: (text) => this.#send(text),
      verify: () => void this.#verify(),
      verified: () =>
        this.#o.view.notice(
          `${this.#peer}'s identity comes from the team chain; /verify shows the words of the ` +
            `peer session to compare by voice`,
        ),
      quit: () => this.#finish(Exit.ok),
    });
  }

  #send(text: string): void {
    const view = this.#o.view;
    const chars = charCount(text);
    if (chars > MAX_MESSAGE_CHARS) {
      return view.problem(`not sent: ${chars} characters; the limit is ${MAX_MESSAGE_CHARS}`);
    }
    this.#pendingSends++;
    // One at a time, so messages arrive in the order they were typed.
    this.#sends.push(async () => {
      const r = await callDaemon(this.#o.socket, "chat.send", {
        member: this.#fingerprint,
        text,
      }) as ChatSendResult;
      view.outgoing(text);
      if (!r.shown && !this.#toldUnseen) {
        this.#toldUnseen = true;
        view.notice(`${this.#peer} has no chat window open: they will see it when they open one`);
      }
      if (!this.#online) {
        this.#online = true;
        this.#status();
      }
    }, (err) => {
      view.problem(`not sent: ${err instanceof Error ? err.message : err}`);
      if (err instanceof DenError && err.code === "peer_offline" && this.#online) {
        this.#online = false;
        this.#status();
      }
    });
    this.#sends.push(() => {
      this.#pendingSends--;
      this.#maybeEnd();
    }, () => {});
  }

  async #verify(): Promise<void> {
    try {
      const r = await callDaemon(this.#o.socket, "peers.verify", {
        name: this.#peer,
      }) as VerifyResult;
      this.#o.view.notice(
        `verify: ${r.words.join(" ")}\n${this.#peer} sees the same words with ` +
          `den peers verify (or /verify in their chat) unless someone is in the middle`,
      );
    } catch (err) {
      this.#o.view.problem(err instanceof Error ? err.message : String(err));
    }
  }

  #maybeEnd(): void {
    if (this.#inputEnded && this.#pendingSends === 0) this.#finish(Exit.ok);
  }

  #status(): void {
    this.#o.view.status({
      state: this.#online ? "ONLINE" : "OFFLINE",
      peer: this.#peer,
      where: "team chat",
      trust: "identity from the team chain",
    });
  }
}
