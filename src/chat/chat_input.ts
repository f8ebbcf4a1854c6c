/** What a typed line means: a message, or one of the chat commands. */
import type { ChatView } from "./chat_view.ts";

export type ChatLine =
  | { type: "message"; text: string }
  | { type: "help" }
  | { type: "verify" }
  | { type: "verified" }
  | { type: "quit" }
  | { type: "unknown"; command: string };

export const CHAT_HELP = [
  "/verify     show the six safety words; read them to the other person by voice",
  "/verified   mark the words as matching (after comparing them)",
  "/quit       end the chat and wipe its keys (also Ctrl-C, or Ctrl-D on an empty line)",
  "/help       this list",
  "//text      send a message that starts with /",
].join("\n");

/** What each kind of chat does with the commands that differ between them. */
export interface ChatLineHandlers {
  message(text: string): void;
  verify(): void;
  verified(): void;
  quit(): void;
}

/** Runs one typed line: blank lines do nothing, /help and unknown commands are answered here. */
export function handleChatLine(text: string, view: ChatView, h: ChatLineHandlers): void {
  const line = parseChatLine(text);
  switch (line.type) {
    case "message":
      if (line.text.trim() !== "") h.message(line.text);
      return;
    case "help":
      return view.notice(CHAT_HELP);
    case "unknown":
      return view.problem(`unknown command ${line.command}: /help lists them`);
    default:
      return h[line.type]();
  }
}

export function parseChatLine(text: string): ChatLine {
  if (!text.startsWith("/")) return { type: "message", text };
  if (text.startsWith("//")) return { type: "message", text: text.slice(1) };
  const command = text.trim().split(/\s+/)[0].toLowerCase();
  switch (command) {
    case "/help":
    case "/?":
      return { type: "help" };
    case "/verify":
      return { type: "verify" };
    case "/verified":
      return { type: "verified" };
    case "/quit":
    case "/exit":
    case "/q":
      return { type: "quit" };
  }
  return { type: "unknown", command: command.slice(0, 40) };
}
