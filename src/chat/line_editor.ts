/**
 * The input line of the chat terminal, as pure state: bytes from a raw-mode terminal go in,
 * actions come out (submit a line, quit, redraw). Escape sequences split across reads are kept
 * until complete.
 */

export type EditorAction =
  | { type: "submit"; text: string }
  | { type: "quit" }
  | { type: "redraw" }
  | { type: "bell" };

const ESC = "\x1b";

export class LineEditor {
  readonly #max: number;
  #chars: string[] = [];
  #cursor = 0;
  #pending = "";
  readonly #decoder = new TextDecoder();

  /** `max`: characters a line may hold; typing more rings the bell. */
  constructor(max: number) {
    this.#max = max;
  }

  get text(): string {
    return this.#chars.join("");
  }

  get length(): number {
    return this.#chars.length;
  }

  /** Characters between the cursor and the end of the line. */
  get afterCursor(): number {
    return this.#chars.length - this.#cursor;
  }

  /** Feeds raw terminal bytes; returns what the caller must do (the line is redrawn after). */
  feed(bytes: Uint8Array): EditorAction[] {
    const input = this.#pending + this.#decoder.decode(bytes, { stream: true });
    this.#pending = "";
    const out: EditorAction[] = [];
    const chars = [...input];
    for (let i = 0; i < chars.length; i++) {
      const c = chars[i];
      if (c === ESC) {
        const seq = escapeSequence(chars, i);
        if (seq === null) {
          this.#pending = chars.slice(i).join("");
          break;
        }
        this.#escape(seq);
        i += seq.length - 1;
        continue;
      }
      this.#key(c, out);
    }
    return out;
  }

  #key(c: string, out: EditorAction[]): void {
    switch (c) {
      case "\r":
      case "\n": {
        const text = this.text;
        this.#chars = [];
        this.#cursor = 0;
        out.push({ type: "submit", text });
        return;
      }
      case "\x03": // Ctrl-C
        out.push({ type: "quit" });
        return;
      case "\x04": // Ctrl-D: quit on an empty line, else delete forward
        if (this.#chars.length === 0) out.push({ type: "quit" });
        else this.#chars.splice(this.#cursor, 1);
        return;
      case "\x7f":
      case "\b":
        if (this.#cursor > 0) this.#chars.splice(--this.#cursor, 1);
        return;
      case "\x15": // Ctrl-U: clear to start
        this.#chars.splice(0, this.#cursor);
        this.#cursor = 0;
        return;
      case "\x17": { // Ctrl-W: delete the word before the cursor
        let start = this.#cursor;
        while (start > 0 && this.#chars[start - 1] === " ") start--;
        while (start > 0 && this.#chars[start - 1] !== " ") start--;
        this.#chars.splice(start, this.#cursor - start);
        this.#cursor = start;
        return;
      }
      case "\x01": // Ctrl-A
        this.#cursor = 0;
        return;
      case "\x05": // Ctrl-E
        this.#cursor = this.#chars.length;
        return;
      case "\x0c": // Ctrl-L
        out.push({ type: "redraw" });
        return;
      case "\t":
        c = " ";
    }
    if (c.codePointAt(0)! < 0x20) return; // other controls do nothing
    if (this.#chars.length >= this.#max) {
      out.push({ type: "bell" });
      return;
    }
    this.#chars.splice(this.#cursor++, 0, c);
  }

  #escape(seq: string): void {
    const body = seq.slice(1);
    if (body === "[D" || body === "OD") this.#cursor = Math.max(0, this.#cursor - 1);
    else if (body === "[C" || body === "OC") {
      this.#cursor = Math.min(this.#chars.length, this.#cursor + 1);
    } else if (["[H", "OH", "[1~", "[7~"].includes(body)) this.#cursor = 0;
    else if (["[F", "OF", "[4~", "[8~"].includes(body)) this.#cursor = this.#chars.length;
    else if (body === "[3~") this.#chars.splice(this.#cursor, 1);
    // Anything else (up/down, function keys, mouse) is ignored.
  }
}

/**
 * The escape sequence starting at `chars[i]`, or null when it is not complete yet: ESC alone,
 * ESC O x (SS3), or ESC [ params final (CSI, final byte 0x40-0x7e).
 */
function escapeSequence(chars: string[], i: number): string | null {
  const next = chars[i + 1];
  if (next === undefined) return null;
  if (next === "O") return chars[i + 2] === undefined ? null : chars.slice(i, i + 3).join("");
  if (next !== "[") return chars.slice(i, i + 2).join(""); // Alt+key: ignored as a pair
  for (let j = i + 2; j < chars.length && j < i + 32; j++) {
    const code = chars[j].codePointAt(0)!;
    if (code >= 0x40 && code <= 0x7e) return chars.slice(i, j + 1).join("");
  }
  return chars.length - i >= 32 ? chars.slice(i, i + 2).join("") : null;
}
