/** Dotenv parsing and serialising: the syntax rules, their errors, the bounds and round trips. */
import { prng } from "../../scripts/lib/prng.ts";
import assert from "node:assert/strict";
import {
  DotenvError,
  formatDotenv,
  formatJson,
  formatShell,
  MAX_DOTENV_BYTES,
  MAX_DOTENV_ENTRIES,
  parseDotenv,
} from "../../src/secrets/dotenv.ts";

/** key → value, the shape most tests care about. */
function values(text: string): Record<string, string> {
  return Object.fromEntries(parseDotenv(text).map((e) => [e.key, e.value]));
}

function value(text: string): string {
  const entries = parseDotenv(text);
  assert.equal(entries.length, 1, `${JSON.stringify(text)}: ${JSON.stringify(entries)}`);
  return entries[0].value;
}

/** The DotenvError parseDotenv throws for `text`, or fails the test if it parses. */
function failure(text: string): DotenvError {
  try {
    parseDotenv(text);
  } catch (e) {
    assert.ok(e instanceof DotenvError, `${JSON.stringify(text)}: expected DotenvError, got ${e}`);
    return e;
  }
  assert.fail(`${JSON.stringify(text)} was accepted`);
}

// Every character the syntax gives a meaning to, plus non-ASCII and invisible ones.
const SPECIALS = [
  "\n",
  "\r",
  "\r\n",
  "\t",
  " ",
  "\\",
  '"',
  "'",
  "`",
  "$",
  "${X}",
  "#",
  " #",
  "=",
  "\\n",
  '\\"',
  "\\$",
  "export ",
  "\uFEFF",
  "\u2028",
  "\0",
  "\x1b",
  "é",
  "日本",
  "🔑",
  "a",
  "Z",
  "0",
  "_",
  "-",
  ".",
  "/",
  ":",
  "@",
  "+",
];

function randomValues(seed: number, count: number, exclude: string[] = []): string[] {
  const rand = prng(seed);
  const alphabet = SPECIALS.filter((s) => !exclude.some((x) => s.includes(x)));
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const len = Math.floor(rand() * 12);
    let s = "";
    for (let j = 0; j < len; j++) s += alphabet[Math.floor(rand() * alphabet.length)];
    out.push(s);
  }
  return out;
}

const TRICKY = [
  "",
  " ",
  "  leading and trailing  ",
  "simple",
  "with space",
  "multi\nline\nvalue\n",
  "\n",
  "crlf\r\ninside",
  "lone\rcr",
  "tab\there",
  'double "quotes"',
  "single 'quotes'",
  `both ' and "`,
  "'",
  '"',
  "\\",
  "back\\slash\\n literal",
  "ends with backslash\\",
  "# not a comment",
  "a #b",
  "a#b",
  "key=value=more",
  "=",
  "$HOME ${HOME} $(whoami) `id`",
  "\\$",
  "unicode: é 日本 🔑 \u2028",
  "\uFEFFbom first",
  "nul\0inside",
  "postgres://user:p@ss@host:5432/db?sslmode=require",
  "-----BEGIN KEY-----\nAAAA+/=\n-----END KEY-----\n",
];

Deno.test("parseDotenv: blank lines and # comments are ignored", () => {
  assert.deepEqual(parseDotenv(""), []);
  assert.deepEqual(parseDotenv("\n\n   \n\t\n# only a comment\n  # indented comment\n"), []);
  assert.deepEqual(parseDotenv("# c\n\nA=1\n\n# c\nB=2\n"), [
    { key: "A", value: "1", line: 3 },
    { key: "B", value: "2", line: 6 },
  ]);
});

Deno.test("parseDotenv: optional export prefix, spaces around =, indentation", () => {
  assert.deepEqual(values("export A=1\nexport\tB=2\n  C = 3\nD\t=\t4\n   export E =5"), {
    A: "1",
    B: "2",
    C: "3",
    D: "4",
    E: "5",
  });
  // `export` is only a prefix when a name follows it.
  assert.deepEqual(values("export=1\nexport = 2"), { export: "2" });
  assert.match(failure("export FOO").message, /line 1: expected KEY=VALUE/);
});

Deno.test("parseDotenv: key names", () => {
  for (const key of ["A", "a", "_", "_A1", "abc_DEF_123", "K".repeat(128), "__proto__"]) {
    assert.deepEqual(parseDotenv(`${key}=v`), [{ key, value: "v", line: 1 }]);
  }
  const bad = ["1A", "A-B", "A.B", "A:B", "FOO BAR", "É", "A$", '"A"', "'A'", "K".repeat(129)];
  for (const key of bad) {
    const e = failure(`OK=1\n# c\n${key}=v\n`);
    assert.equal(e.line, 3, key);
    assert.match(e.message, /^line 3: /, key);
    assert.match(e.message, /invalid key|longer than 128/, key);
  }
  assert.match(failure("A=1\n=x").message, /^line 2: missing key/);
  const noEq = failure("A=1\nJUST_A_WORD\n");
  assert.equal(noEq.line, 2);
  assert.match(noEq.message, /line 2: expected KEY=VALUE but found "JUST_A_WORD"; add '='/);
});

Deno.test("parseDotenv: unquoted values are trimmed and end at ' #'", () => {
  assert.equal(value("A=  spaced out  "), "spaced out");
  assert.equal(value("A=value # comment"), "value");
  assert.equal(value("A=value\t# tab comment"), "value");
  assert.equal(value("A=value   #"), "value");
  assert.equal(value("A=a#b"), "a#b");
  assert.equal(value("A=#not-a-comment"), "#not-a-comment");
  assert.equal(value("A= # only a comment"), "");
  assert.equal(value("A=x=y==z"), "x=y==z");
  assert.equal(value("A=it's"), "it's");
  assert.equal(value('A=say "hi"'), 'say "hi"');
  assert.equal(value("A=back\\slash\\n"), "back\\slash\\n");
  assert.equal(value("A=`backticks`"), "`backticks`");
  assert.equal(value("A=$HOME"), "$HOME");
  assert.equal(value("A=日本 🔑"), "日本 🔑");
});

Deno.test("parseDotenv: empty values", () => {
  assert.deepEqual(values('A=\nB=""\nC=\'\'\nD=   \nE= # c\nF="" # c'), {
    A: "",
    B: "",
    C: "",
    D: "",
    E: "",
    F: "",
  });
});

Deno.test("parseDotenv: single quotes are literal and may span lines", () => {
  assert.equal(value("A='  keep  spaces  '"), "  keep  spaces  ");
  assert.equal(value("A='no \\n escapes \\ $HOME # here'"), "no \\n escapes \\ $HOME # here");
  assert.equal(value("A='has \"double\" quotes'"), 'has "double" quotes');
  assert.equal(value("A='x'   # trailing comment"), "x");
  assert.deepEqual(parseDotenv("A='line1\nline2\n\nline4'\nB=after"), [
    { key: "A", value: "line1\nline2\n\nline4", line: 1 },
    { key: "B", value: "after", line: 5 },
  ]);
});

Deno.test("parseDotenv: double quotes process escapes and may span lines", () => {
  assert.equal(value('A="a\\nb\\rc\\td"'), "a\nb\rc\td");
  assert.equal(value('A="\\\\ \\" \\$"'), '\\ " $');
  // Other backslashes are kept as they are.
  assert.equal(value('A="\\q \\x41 \\u00e9 \\\' \\#"'), "\\q \\x41 \\u00e9 \\' \\#");
  assert.equal(value('A="  keep  # not a comment  "'), "  keep  # not a comment  ");
  assert.equal(value(`A="it's = fine"`), "it's = fine");
  assert.equal(value('A="x" # comment'), "x");
  assert.deepEqual(parseDotenv('A="-----BEGIN-----\nabc\n-----END-----"\nB="\\n"\n'), [
    { key: "A", value: "-----BEGIN-----\nabc\n-----END-----", line: 1 },
    { key: "B", value: "\n", line: 4 },
  ]);
  // A backslash before a real newline is not an escape; both stay.
  assert.equal(value('A="a\\\nb"'), "a\\\nb");
});

Deno.test("parseDotenv: only whitespace or ' # comment' may follow a closing quote", () => {
  assert.equal(value('A="x"   \t'), "x");
  assert.equal(value("A='x'\t# c"), "x");
  for (const text of ['A="x"y', "A='x' y", 'A="x""y"', "A='x'#c"]) {
    const e = failure(text);
    assert.equal(e.line, 1, text);
    assert.match(e.message, /line 1: unexpected text .* after the closing quote of A/, text);
    assert.match(e.message, /put the whole value inside the quotes/, text);
  }
  // The line named is the one with the closing quote.
  const e = failure('A=1\nB="one\ntwo" three\n');
  assert.equal(e.line, 3);
  assert.match(e.message, /^line 3: unexpected text "three"/);
});

Deno.test("parseDotenv: an unterminated quote names the line where it started", () => {
  const cases: [string, number, string][] = [
    ['A="never closed', 1, '"'],
    ["A=1\n\nB='open\nC=2\nD=3\n", 3, "'"],
    ['A=1\nB="escaped at end\\"\nC=2', 2, '"'],
    ['A="ends in a backslash\\', 1, '"'],
  ];
  for (const [text, line, quote] of cases) {
    const e = failure(text);
    assert.equal(e.line, line, text);
    assert.ok(e.message.startsWith(`line ${line}: `), e.message);
    assert.ok(e.message.includes(`unterminated ${quote} quote`), e.message);
    assert.ok(e.message.includes(`add the closing ${quote}`), e.message);
  }
});

Deno.test("parseDotenv: CRLF, lone CR and a UTF-8 BOM", () => {
  const want = { A: "1", B: "two words", C: "x\ny", D: "q" };
  const lf = "A=1\nB=two words # c\nC=\"x\ny\"\nD='q'\n";
  assert.deepEqual(values(lf), want);
  assert.deepEqual(values(lf.replaceAll("\n", "\r\n")), want);
  assert.deepEqual(values(lf.replaceAll("\n", "\r")), want);
  assert.deepEqual(values("\uFEFF" + lf.replaceAll("\n", "\r\n")), want);
  assert.deepEqual(parseDotenv("\uFEFFA=1\r\n\r\nB=2"), [
    { key: "A", value: "1", line: 1 },
    { key: "B", value: "2", line: 3 },
  ]);
  // Escaped \r still yields a carriage return.
  assert.equal(value('A="a\\r\\nb"\r\n'), "a\r\nb");
});

Deno.test("parseDotenv: a repeated key keeps its last value at its first position", () => {
  assert.deepEqual(parseDotenv("A=1\nB=2\nA=3\nC=4\nB='5'"), [
    { key: "A", value: "3", line: 3 },
    { key: "B", value: "5", line: 5 },
    { key: "C", value: "4", line: 4 },
  ]);
});

Deno.test("parseDotenv: DotenvError carries its line and a name", () => {
  const e = failure("A=1\nB C=2");
  assert.ok(e instanceof Error);
  assert.equal(e.name, "DotenvError");
  assert.equal(e.line, 2);
});

Deno.test("parseDotenv: at most 1 MiB of text", () => {
  const entry = "K=" + "v".repeat(98) + "\n"; // 100 bytes
  const fits = entry.repeat(MAX_DOTENV_BYTES / 100 / 2); // well under both bounds
  assert.equal(parseDotenv(fits).length, 1);
  const exact = "A=" + "x".repeat(MAX_DOTENV_BYTES - 2);
  assert.equal(value(exact).length, MAX_DOTENV_BYTES - 2);
  for (const text of [exact + "x", "A=" + "é".repeat(MAX_DOTENV_BYTES / 2)]) {
    const e = failure(text);
    assert.match(e.message, /larger than 1048576 bytes \(1 MiB\)/);
    assert.match(e.message, /split it/);
  }
});

Deno.test("parseDotenv: at most 10,000 entries", () => {
  const lines = (n: number) => Array.from({ length: n }, (_, i) => `K${i}=${i}`).join("\n");
  assert.equal(parseDotenv(lines(MAX_DOTENV_ENTRIES)).length, MAX_DOTENV_ENTRIES);
  const e = failure(lines(MAX_DOTENV_ENTRIES + 1));
  assert.equal(e.line, MAX_DOTENV_ENTRIES + 1);
  assert.match(e.message, /more than 10000 entries/);
  // Repeats count too: the bound is on work done, not on distinct keys.
  assert.match(failure("A=1\n".repeat(MAX_DOTENV_ENTRIES + 1)).message, /more than 10000/);
});

Deno.test("formatDotenv: simple values stay unquoted, others get double quotes", () => {
  assert.equal(formatDotenv([]), "");
  assert.equal(
    formatDotenv([
      { key: "A", value: "plain-Value_1.2/x:y@z+w" },
      { key: "B", value: "" },
      { key: "C", value: "has space" },
      { key: "D", value: 'q"\\$\n\r\t#' },
    ]),
    'A=plain-Value_1.2/x:y@z+w\nB=\nC="has space"\nD="q\\"\\\\\\$\\n\\r\\t#"\n',
  );
  assert.throws(() => formatDotenv([{ key: "BAD KEY", value: "x" }]), /invalid key "BAD KEY"/);
  assert.throws(() => formatDotenv([{ key: "", value: "x" }]), /missing key/);
});

Deno.test("formatDotenv: round-trips tricky values", () => {
  const entries = TRICKY.map((v, i) => ({ key: `K${i}`, value: v }));
  entries.push({ key: "export", value: "x y" }, { key: "__proto__", value: "p" });
  const text = formatDotenv(entries);
  assert.deepEqual(parseDotenv(text).map(({ key, value }) => ({ key, value })), entries);
  // The same survives Windows line endings and a BOM added by an editor.
  const crlf = "\uFEFF" + text.replaceAll("\n", "\r\n");
  assert.deepEqual(parseDotenv(crlf).map(({ key, value }) => ({ key, value })), entries);
});

Deno.test("formatDotenv: round-trips 2,000 seeded random values", () => {
  const vals = randomValues(0xd07e, 2000);
  const entries = vals.map((v, i) => ({ key: `R_${i}`, value: v }));
  const parsed = parseDotenv(formatDotenv(entries));
  assert.equal(parsed.length, entries.length);
  for (let i = 0; i < entries.length; i++) {
    assert.equal(parsed[i].key, entries[i].key);
    assert.equal(parsed[i].value, entries[i].value, `value ${JSON.stringify(entries[i].value)}`);
  }
  // The generator really did cover every special string.
  for (const s of SPECIALS) assert.ok(vals.some((v) => v.includes(s)), JSON.stringify(s));
});

Deno.test("formatShell: export lines with single-quote escaping", () => {
  assert.equal(formatShell([]), "");
  assert.equal(
    formatShell([{ key: "A", value: "it's" }, { key: "B", value: "" }]),
    "export A='it'\\''s'\nexport B=''\n",
  );
  assert.throws(() => formatShell([{ key: "A;rm -rf ~", value: "x" }]), /invalid key/);
});

Deno.test("formatShell: POSIX sh eval yields the exact values", async () => {
  // NUL cannot live in an environment variable or a shell string.
  const vals = [...TRICKY, ...randomValues(42, 300)].filter((v) => !v.includes("\0"));
  const entries = vals.map((v, i) => ({ key: `S${i}`, value: v }));
  const printAll = entries.map((e) => `printf '%s\\0' "$${e.key}"`).join("\n");
  const script = `${formatShell(entries)}\n${printAll}\n`;
  const child = new Deno.Command("sh", {
    args: ["-c", 'eval "$(cat)"'],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const out = await child.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const got = new TextDecoder().decode(out.stdout).split("\0").slice(0, -1);
  // `$(cat)` strips trailing newlines of the script only, never of a quoted value.
  assert.deepEqual(got, vals);
});

Deno.test("formatJson: pretty object, keys in given order, trailing newline", () => {
  assert.equal(formatJson([]), "{}\n");
  const entries = [
    { key: "Z", value: "last letter first" },
    { key: "A", value: 'quote " and \\ and \n' },
    { key: "__proto__", value: "plain key" },
    { key: "M", value: "🔑" },
  ];
  const text = formatJson(entries);
  assert.ok(text.endsWith("}\n"));
  assert.equal(
    text,
    '{\n  "Z": "last letter first",\n  "A": "quote \\" and \\\\ and \\n",\n' +
      '  "__proto__": "plain key",\n  "M": "🔑"\n}\n',
  );
  const parsed = JSON.parse(text);
  assert.deepEqual(Object.keys(parsed), ["Z", "A", "__proto__", "M"]);
  assert.equal(Object.getOwnPropertyDescriptor(parsed, "__proto__")?.value, "plain key");
  // A repeated key keeps its last value at its first position, as parseDotenv does.
  assert.equal(
    formatJson([{ key: "A", value: "1" }, { key: "B", value: "2" }, { key: "A", value: "3" }]),
    '{\n  "A": "3",\n  "B": "2"\n}\n',
  );
});
