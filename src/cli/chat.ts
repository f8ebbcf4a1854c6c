/** `den chat ROOM --relay URL` (room chat, no daemon) and `den chat @MEMBER` (over the mesh). */
// The implementation is loaded only when the command runs, so other commands start fast.
import { CLIENT_PERMISSIONS, type CommandSpec } from "./spec.ts";

export const chatCommand: CommandSpec = {
  name: "chat",
  summary: "end-to-end encrypted chat: a relay room (ROOM) or a teammate (@MEMBER)",
  args: "[ROOM|@MEMBER]",
  maxArgs: 1,
  options: {
    relay: {
      type: "string",
      value: "URL",
      help: "relay for room chat, ws:// or wss:// (default: the first [relay] url in config)",
    },
    compat: {
      type: "boolean",
      help: "plain secure-chat format for other clients: no post-quantum protection",
    },
  },
  description: [
    "ROOM is 8-16 capital letters and digits that both people type; without one, den asks",
    "(and suggests a fresh code). Room chat needs no daemon and no identity: keys are made for",
    "the session, kept in memory only and wiped when it ends. The relay sees only ciphertext",
    "padded to fixed sizes.",
    "",
    "@MEMBER chats with a teammate through the local daemon over the existing peer session;",
    "messages are delivered while both daemons are online, never stored on disk.",
    "",
    "In the chat: /verify shows six words to compare by voice, /verified marks them as",
    "matching, /quit (or Ctrl-C) ends it, /help lists commands. NO_COLOR disables colors.",
    "Without a terminal, stdin lines are sent and messages are printed as `peer: text`.",
  ].join("\n"),
  permissions: CLIENT_PERMISSIONS,
  async run(ctx) {
    return (await import("./chat_action.ts")).runChat(ctx);
  },
};
