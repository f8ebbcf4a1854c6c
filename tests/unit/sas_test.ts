import assert from "node:assert/strict";
import { concatBytes, fromHex, toHex, utf8 } from "../../src/crypto/encoding.ts";
import { sha256 } from "../../src/crypto/kdf.ts";
import { SAS_DOMAIN, SAS_WORD_COUNT, sasWords } from "../../src/trust/sas.ts";

const phrase = (words: readonly string[]) => words.join(" ");
import { SAS_WORDS } from "../../src/trust/wordlist.ts";

const ID = Uint8Array.from({ length: 32 }, (_, i) => i);

Deno.test("sas: the vector in docs/TRUST.md", async () => {
  const doc = await Deno.readTextFile(new URL("../../docs/TRUST.md", import.meta.url));
  const field = (label: string) => {
    const m = doc.match(new RegExp(`^${label}:\\s+([0-9a-z ]+)$`, "m"));
    assert.ok(m, `docs/TRUST.md has no "${label}:" line`);
    return m[1].trim();
  };
  const id = fromHex(field("session id"));
  assert.deepEqual(id, ID, "the documented session id is the bytes 0x00..0x1f");
  const digest = sha256(concatBytes(utf8(SAS_DOMAIN), id));
  assert.equal(toHex(digest), field("sha256"));
  assert.equal([...digest.subarray(0, 6)].join(" "), field("bytes"));
  const words = sasWords(id);
  assert.equal(phrase(words), field("words"));
  assert.deepEqual(words, field("words").split(" "));
});

Deno.test("sas: six words, deterministic, the same for both ends of a session", () => {
  const words = sasWords(ID);
  assert.equal(words.length, SAS_WORD_COUNT);
  assert.deepEqual(sasWords(ID.slice()), words, "a copy of the session id gives the same words");
  for (const w of words) assert.ok(SAS_WORDS.includes(w));
  assert.deepEqual(ID, Uint8Array.from({ length: 32 }, (_, i) => i), "input not modified");
});

Deno.test("sas: flipping any one bit of the session id changes the words", () => {
  const base = phrase(sasWords(ID));
  const seen = new Set([base]);
  for (let bit = 0; bit < ID.length * 8; bit++) {
    const id = ID.slice();
    id[bit >> 3] ^= 1 << (bit & 7);
    const words = phrase(sasWords(id));
    assert.notEqual(words, base, `bit ${bit}`);
    seen.add(words);
  }
  assert.equal(seen.size, ID.length * 8 + 1, "256 one-bit neighbours give 256 distinct phrases");
  // Length matters too: a prefix or an extension is another session.
  assert.notEqual(phrase(sasWords(ID.subarray(0, 31))), base);
  assert.notEqual(phrase(sasWords(concatBytes(ID, new Uint8Array(1)))), base);
});

Deno.test("sas: the domain label separates SAS from a plain hash of the session id", () => {
  const plain = sha256(ID).subarray(0, 6);
  const words = sasWords(ID);
  assert.notDeepEqual(words, [...plain].map((b) => SAS_WORDS[b]));
});

Deno.test("sas: every word is reachable and each byte picks its word", () => {
  // Byte i of the digest picks SAS_WORDS[digest[i]]: check against the hash directly.
  for (let n = 0; n < 64; n++) {
    const id = sha256(utf8(`session ${n}`));
    const digest = sha256(concatBytes(utf8(SAS_DOMAIN), id));
    assert.deepEqual(sasWords(id), [...digest.subarray(0, 6)].map((b) => SAS_WORDS[b]));
  }
});

Deno.test("sas: refuses session ids too short to be a transcript hash", () => {
  assert.throws(() => sasWords(new Uint8Array(0)), RangeError);
  assert.throws(() => sasWords(new Uint8Array(15)), RangeError);
  assert.equal(sasWords(new Uint8Array(16)).length, 6);
});

/** Edit distance with adjacent swaps (optimal string alignment). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => {
    const row = new Array<number>(b.length + 1).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(
        d[i - 1][j] + 1,
        d[i][j - 1] + 1,
        d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

Deno.test("wordlist: 256 distinct lowercase a-z words of 3-7 letters, alphabetical, frozen", () => {
  assert.equal(SAS_WORDS.length, 256);
  assert.equal(new Set(SAS_WORDS).size, 256);
  for (const w of SAS_WORDS) assert.match(w, /^[a-z]{3,7}$/);
  assert.deepEqual([...SAS_WORDS].sort(), [...SAS_WORDS]);
  assert.ok(Object.isFrozen(SAS_WORDS));
});

Deno.test("wordlist: no two words differ by one letter, none is a prefix of another", () => {
  for (let i = 0; i < SAS_WORDS.length; i++) {
    for (let j = i + 1; j < SAS_WORDS.length; j++) {
      const [a, b] = [SAS_WORDS[i], SAS_WORDS[j]];
      assert.ok(distance(a, b) >= 2, `${a} and ${b} differ by one letter`);
      assert.ok(!a.startsWith(b) && !b.startsWith(a), `${a} / ${b}: one is a prefix`);
    }
  }
  assert.equal(distance("star", "stair"), 1); // the check itself works
  assert.equal(distance("form", "from"), 1);
});

Deno.test("wordlist: known homophones and near-homophones are left out", () => {
  const excluded = [
    "pear",
    "pair",
    "bear",
    "whale",
    "sea",
    "sun",
    "ship",
    "robin",
    "rose",
    "flower",
    "flour",
    "knight",
    "night",
    "plum",
    "sail",
    "tail",
    "meat",
    "horse",
    "carrot",
    "medal",
  ];
  for (const w of excluded) assert.ok(!SAS_WORDS.includes(w), w);
});
