/**
 * Turns raw-mode terminal bytes into a hidden line (pure, so it is testable without a TTY).
 * Handles Enter, backspace, Ctrl-U, Ctrl-C and Ctrl-D, and drops escape sequences (arrow keys)
 * rather than taking them as passphrase characters.
 */

export type LineEvent = "more" | "done" | "cancel";

export const MAX_LINE_BYTES = 1024;

export class HiddenLine {
  #bytes = new Uint8Array(MAX_LINE_BYTES);
  #len = 0;
  #escape: "none" | "start" | "csi" = "none";
  overflow = false;

  /** Feeds bytes read from the terminal; stops at the first Enter, Ctrl-C or Ctrl-D. */
  feed(chunk: Uint8Array): LineEvent {
    for (const b of chunk) {
      if (this.#escape !== "none") {
        this.#skipEscape(b);
        continue;
      }
      if (b === 0x0d || b === 0x0a) return "done";
      if (b === 0x03) return "cancel"; // Ctrl-C
      if (b === 0x04) { // Ctrl-D: end of input, like a shell, only on an empty line
        if (this.#len === 0) return "cancel";
        continue;
      }
      if (b === 0x7f || b === 0x08) this.#backspace();
      else if (b === 0x15) this.#len = 0; // Ctrl-U
      else if (b === 0x1b) this.#escape = "start";
      else if (b < 0x20) continue; // other control characters are never part of a passphrase
      else if (this.#len < this.#bytes.length) this.#bytes[this.#len++] = b;
      else this.overflow = true;
    }
    return "more";
  }

  /** The line so far, decoded as UTF-8 (invalid sequences become U+FFFD). */
  text(): string {
    return new TextDecoder().decode(this.#bytes.subarray(0, this.#len));
  }

  wipe(): void {
    this.#bytes.fill(0);
    this.#len = 0;
  }

  // Removes one whole UTF-8 character: trailing continuation bytes, then the lead byte.
  #backspace(): void {
    while (this.#len > 0 && (this.#bytes[this.#len - 1] & 0xc0) === 0x80) this.#len--;
    if (this.#len > 0) this.#len--;
  }

  // ESC [ ... final (0x40..0x7e) or ESC O x, or ESC x: drop the whole sequence.
  #skipEscape(b: number): void {
    if (this.#escape === "start") {
      this.#escape = b === 0x5b || b === 0x4f ? "csi" : "none";
    } else if (b >= 0x40 && b <= 0x7e) {
      this.#escape = "none";
    }
  }
}
