/** The chat terminal's pure parts: the input line editor, safe display of received text, commands. */
import assert from "node:assert/strict";
import { parseChatLine } from "../../src/chat/chat_input.ts";
import { displayLines, tailColumns } from "../../src/chat/display_text.ts";
import { LineEditor } from "../../src/chat/line_editor.ts";
import {
  decodeChatAck,
  decodeChatMessage,
  encodeChatAck,
  encodeChatMessage,
} from "../../src/wire/member_chat.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("typing, editing keys and Enter produce the line a person meant", () => {
  const e = new LineEditor(1000);
  assert.deepEqual(e.feed(bytes("helo")), []);
  e.feed(bytes("\x1b[D")); // ←
  e.feed(bytes("l"));
  assert.equal(e.text, "hello");
  e.feed(bytes("\x1b[H>")); // Home, then a character at the start
  e.feed(bytes("\x1b[F!")); // End
  assert.equal(e.text, ">hello!");
  e.feed(bytes("\x7f\x7f")); // two backspaces
  assert.equal(e.text, ">hell");
  e.feed(bytes(" world\x17")); // Ctrl-W removes the last word
  assert.equal(e.text, ">hell ");
  assert.deepEqual(e.feed(bytes("\r")), [{ type: "submit", text: ">hell " }]);
  assert.equal(e.text, "");
  e.feed(bytes("abc\x15")); // Ctrl-U clears
  assert.equal(e.text, "");
});

Deno.test("escape sequences and UTF-8 split across reads are put back together", () => {
  const e = new LineEditor(1000);
  const snowman = bytes("☃");
  e.feed(snowman.subarray(0, 1));
  e.feed(snowman.subarray(1));
  e.feed(bytes("x\x1b"));
  e.feed(bytes("["));
  e.feed(bytes("D"));
  e.feed(bytes("y"));
  assert.equal(e.text, "☃yx");
  e.feed(bytes("\x1b[3~")); // Delete removes the character under the cursor
  assert.equal(e.text, "☃y");
});

Deno.test("Ctrl-C quits; Ctrl-D quits only on an empty line; the length limit rings the bell", () => {
  const e = new LineEditor(3);
  assert.deepEqual(e.feed(bytes("\x03")), [{ type: "quit" }]);
  assert.deepEqual(e.feed(bytes("\x04")), [{ type: "quit" }]);
  assert.deepEqual(e.feed(bytes("abcd")), [{ type: "bell" }]);
  assert.equal(e.text, "abc");
  assert.deepEqual(e.feed(bytes("\x04")), []);
  assert.deepEqual(e.feed(bytes("\x0c")), [{ type: "redraw" }]);
});

Deno.test("received text cannot move the cursor, change colors or reverse its reading order", () => {
  const lines = displayLines("hi\x1b[2J\x1b]0;pwned\x07\r\nsecond\u202eline\x9b");
  assert.equal(lines.length, 2);
  const unsafe = [...lines.join("")].filter((c) => {
    const n = c.codePointAt(0)!;
    return n < 0x20 || (n >= 0x7f && n <= 0x9f) || (n >= 0x202a && n <= 0x202e);
  });
  assert.deepEqual(unsafe, [], lines.join("|"));
  assert.equal(lines[0], "hi\\u{1b}[2J\\u{1b}]0;pwned\\u{7}");
  assert.equal(lines[1], "second\\u{202e}line\\u{9b}");
  assert.deepEqual(displayLines("a\tb"), ["a    b"]);
  assert.equal(tailColumns("abcdef", 3), "def");
});

Deno.test("chat commands are recognised; // sends a message starting with /", () => {
  assert.deepEqual(parseChatLine("hello"), { type: "message", text: "hello" });
  assert.deepEqual(parseChatLine("//verify"), { type: "message", text: "/verify" });
  assert.deepEqual(parseChatLine("/VERIFY"), { type: "verify" });
  assert.deepEqual(parseChatLine("/quit now"), { type: "quit" });
  assert.deepEqual(parseChatLine("/verified"), { type: "verified" });
  assert.deepEqual(parseChatLine("/help"), { type: "help" });
  assert.deepEqual(parseChatLine("/frobnicate"), { type: "unknown", command: "/frobnicate" });
});

Deno.test("team chat messages: round trip, and malformed ones are refused", () => {
  const id = new Uint8Array(8).fill(7);
  assert.deepEqual(decodeChatMessage(encodeChatMessage(id, "héllo 👋")), { id, text: "héllo 👋" });
  assert.equal(decodeChatMessage(id), null, "empty text");
  assert.equal(decodeChatMessage(encodeChatMessage(id, "x".repeat(1001))), null, "too long");
  assert.notEqual(decodeChatMessage(encodeChatMessage(id, "😀".repeat(1000))), null);
  const bad = encodeChatMessage(id, "ok");
  bad[8] = 0xff;
  assert.equal(decodeChatMessage(bad), null, "invalid UTF-8");
  assert.deepEqual(decodeChatAck(encodeChatAck(id, true)), { id, shown: true });
  assert.equal(decodeChatAck(new Uint8Array(9).fill(2)), null);
  assert.equal(decodeChatAck(new Uint8Array(8)), null);
});
