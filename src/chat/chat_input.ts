/** What a typed line means: a message, or one of the chat commands. */

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
