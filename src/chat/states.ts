/** The room-chat session states (docs/CHAT.md) and the only transitions between them. */

export type ChatState =
  | "INIT"
  | "INPUT_VALIDATION"
  | "SEARCHING"
  | "USER_FOUND"
  | "KEY_SETUP"
  | "CONNECTED"
  | "DISCONNECTED"
  | "SESSION_DESTROYED";

/** From each state, where it may go. Every state but the last may end in DISCONNECTED. */
export const TRANSITIONS: Readonly<Record<ChatState, readonly ChatState[]>> = {
  INIT: ["INPUT_VALIDATION", "DISCONNECTED"],
  INPUT_VALIDATION: ["SEARCHING", "DISCONNECTED"],
  SEARCHING: ["USER_FOUND", "DISCONNECTED"],
  USER_FOUND: ["KEY_SETUP", "DISCONNECTED"],
  KEY_SETUP: ["CONNECTED", "DISCONNECTED"],
  CONNECTED: ["DISCONNECTED"],
  DISCONNECTED: ["SESSION_DESTROYED"],
  SESSION_DESTROYED: [],
};

/** Maximum message length, in characters (Unicode code points). */
export const MAX_MESSAGE_CHARS = 1000;

/** Characters as people count them (code points); also the columns text takes in the chat UI. */
export function charCount(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}
