/**
 * Team chat messages inside peer sessions (docs/CHAT.md, "Team chat"). The session already
 * encrypts and authenticates them end to end, so they carry only an id and the text:
 *
 *   message = id (8 bytes) ‖ UTF-8 text (1-1000 characters)
 *   ack     = id (8 bytes) ‖ flags (1 byte; bit 0: a chat window is open and showed it)
 */
import { fromUtf8, utf8 } from "../crypto/encoding.ts";
import { charCount, MAX_MESSAGE_CHARS } from "../chat/states.ts";

export const ChatMsgType = { message: 24, ack: 25 } as const;

export const CHAT_ID_BYTES = 8;
/** 1000 characters of at most 4 bytes each. */
const MAX_TEXT_BYTES = MAX_MESSAGE_CHARS * 4;

export function encodeChatMessage(id: Uint8Array, text: string): Uint8Array {
  const body = utf8(text);
  const out = new Uint8Array(CHAT_ID_BYTES + body.length);
  out.set(id);
  out.set(body, CHAT_ID_BYTES);
  return out;
}

/** null for anything malformed: wrong size, invalid UTF-8, empty or over 1000 characters. */
export function decodeChatMessage(b: Uint8Array): { id: Uint8Array; text: string } | null {
  if (b.length <= CHAT_ID_BYTES || b.length > CHAT_ID_BYTES + MAX_TEXT_BYTES) return null;
  let text: string;
  try {
    text = fromUtf8(b.subarray(CHAT_ID_BYTES));
  } catch {
    return null;
  }
  if (charCount(text) > MAX_MESSAGE_CHARS) return null;
  return { id: b.slice(0, CHAT_ID_BYTES), text };
}

export function encodeChatAck(id: Uint8Array, shown: boolean): Uint8Array {
  const out = new Uint8Array(CHAT_ID_BYTES + 1);
  out.set(id);
  out[CHAT_ID_BYTES] = shown ? 1 : 0;
  return out;
}

export function decodeChatAck(b: Uint8Array): { id: Uint8Array; shown: boolean } | null {
  if (b.length !== CHAT_ID_BYTES + 1 || b[CHAT_ID_BYTES] > 1) return null;
  return { id: b.slice(0, CHAT_ID_BYTES), shown: b[CHAT_ID_BYTES] === 1 };
}
