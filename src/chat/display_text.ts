/**
 * Makes untrusted message text safe to print on a terminal: control characters (escape
 * sequences could move the cursor, retitle the window or fake den's own lines) and bidirectional
 * overrides (which could make text read differently than it is) are shown as visible
 * placeholders; line breaks split the message into lines.
 */

// C0 controls but tab and newline, DEL, C1 controls, and the bidi embedding/override/isolate marks.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/gu;

export function displayLines(text: string): string[] {
  return text.replace(/\r\n?/g, "\n").split("\n").map((line) =>
    line.replace(/\t/g, "    ").replace(UNSAFE, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`)
  );
}

/** The last `width` columns of `text` (so the end of a long input line stays visible). */
export function tailColumns(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : chars.slice(chars.length - width).join("");
}

export function headColumns(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, Math.max(0, width - 1)).join("")}…`;
}
