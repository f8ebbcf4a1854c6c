/**
 * `den completions bash|zsh|fish`: each script, as the real CLI prints it, loads in its shell
 * without a word on stderr and completes what a user types (driven the way each shell drives
 * its completion function). zsh and fish are optional on a machine: their tests say so when
 * skipped.
 */
import assert from "node:assert/strict";
import { COMMANDS } from "../../src/cli/commands.ts";
import { bashCompletion, fishCompletion, zshCompletion } from "../../src/cli/completion_scripts.ts";
import type { CommandSpec } from "../../src/cli/spec.ts";
import { den } from "../../scripts/lib/den_process.ts";

function installed(shell: string): boolean {
  try {
    return new Deno.Command(shell, { args: ["-c", "true"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const hasZsh = installed("zsh");
const hasFish = installed("fish");
if (!hasZsh) console.warn("completions_test: skipped: zsh not installed (zsh tests ignored)");
if (!hasFish) console.warn("completions_test: skipped: fish not installed (fish tests ignored)");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const dirname = (file: string) => file.slice(0, file.lastIndexOf("/"));

async function sh(cmd: string, args: string[], cwd?: string): Promise<Run> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { LC_ALL: "C.UTF-8" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const scripts = new Map<string, Promise<string>>();

/** The script as `den completions SHELL` prints it (once per shell). */
function script(shell: string): Promise<string> {
  if (!scripts.has(shell)) {
    scripts.set(
      shell,
      den(["completions", shell]).then((r) => {
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, "");
        return r.stdout;
      }),
    );
  }
  return scripts.get(shell)!;
}

async function withTemp(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "den-completions-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const firstWords = [...new Set(COMMANDS.map((c) => c.name.split(" ")[0]))];
const subcommands = (group: string) =>
  COMMANDS.filter((c) => c.name.startsWith(group + " ")).map((c) => c.name.split(" ")[1]);
const longFlags = (name: string) => [
  ...Object.keys(COMMANDS.find((c) => c.name === name)!.options).map((f) => `--${f}`),
  "--home",
  "--help",
];

function includesAll(got: string[], want: string[], what: string) {
  for (const w of want) assert.ok(got.includes(w), `${what}: ${w} missing from [${got}]`);
}

// ---------------------------------------------------------------------------------------------
// bash

/**
 * Completes `line` (cursor at its end) the way bash does: COMP_WORDS, COMP_CWORD, COMP_LINE and
 * COMP_POINT set, then the function `complete -p den` names called as `fn den CUR PREV`.
 * `words` overrides the split of the line (bash splits `--flag=value` at the `=`).
 */
const BASH_DRIVER = `
source "$1" || exit 9
spec=$(complete -p den) || exit 8
fn=\${spec#*-F }; fn=\${fn%% *}
COMP_LINE=$2 COMP_POINT=\${#2}
if (( $# > 2 )); then COMP_WORDS=("\${@:3}"); else
  read -ra COMP_WORDS <<< "$2"
  [[ $2 == *' ' ]] && COMP_WORDS+=('')
fi
COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 ))
COMPREPLY=()
"$fn" den "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
(( \${#COMPREPLY[@]} )) && printf '%s\\n' "\${COMPREPLY[@]}"
exit 0
`;

async function bashComplete(file: string, line: string, words?: string[]): Promise<string[]> {
  const r = await sh("bash", [
    "--norc",
    "--noprofile",
    "-c",
    BASH_DRIVER,
    "drive",
    file,
    line,
    ...(words ?? []),
  ], dirname(file));
  assert.equal(r.code, 0, `bash completing '${line}': ${r.stderr}`);
  assert.equal(r.stderr, "", `bash completing '${line}'`);
  return r.stdout.split("\n").filter(Boolean);
}

Deno.test("completions: bash script loads cleanly and registers den", async () => {
  await withTemp(async (dir) => {
    const file = `${dir}/den.bash`;
    await Deno.writeTextFile(file, await script("bash"));
    assert.equal((await sh("bash", ["-n", file])).code, 0);
    const r = await sh("bash", [
      "--norc",
      "--noprofile",
      "-c",
      'source "$1" && complete -p den',
      "x",
      file,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.match(r.stdout, /^complete -F _den den$/m);
  });
});

Deno.test("completions: bash completes commands, subcommands, flags and their values", async () => {
  await withTemp(async (dir) => {
    const file = `${dir}/den.bash`;
    await Deno.writeTextFile(file, await script("bash"));
    const top = await bashComplete(file, "den ");
    includesAll(top, ["init", "env", "vpn", "service", "completions", "version"], "den ");
    assert.deepEqual(top, firstWords, "each first word once, in --help order");
    assert.deepEqual(await bashComplete(file, "den en"), ["env"]);
    const env = await bashComplete(file, "den env ");
    includesAll(env, ["set", "get", "list"], "den env ");
    assert.deepEqual(env, subcommands("env"));
    const flags = await bashComplete(file, "den env set --");
    includesAll(flags, ["--team", "--env", "--home", "--help"], "den env set --");
    assert.deepEqual(flags.toSorted(), longFlags("env set").toSorted());
    assert.deepEqual(await bashComplete(file, "den completions "), ["bash", "zsh", "fish"]);
    assert.deepEqual(await bashComplete(file, "den completions bash "), []);
    assert.deepEqual(await bashComplete(file, "den daemon --log-format "), ["text", "json"]);
    assert.deepEqual(await bashComplete(file, "den daemon --log-format j"), ["json"]);
    assert.deepEqual(await bashComplete(file, "den env export --format "), [
      "dotenv",
      "json",
      "shell",
    ]);
    assert.deepEqual(await bashComplete(file, "den peers v"), ["verify"]);
    assert.deepEqual(await bashComplete(file, "den peers "), ["verify"]);
    // global flags before the command, with their value skipped
    assert.deepEqual(await bashComplete(file, `den --home ${dir} env s`), ["set"]);
    // bash splits --flag=value at '=': at the '=' and after it
    const line = "den daemon --log-format=";
    assert.deepEqual(
      await bashComplete(file, line, ["den", "daemon", "--log-format", "="]),
      ["text", "json"],
    );
    assert.deepEqual(
      await bashComplete(file, line + "t", ["den", "daemon", "--log-format", "=", "t"]),
      ["text"],
    );
    // FILE and DIR placeholders complete paths
    await Deno.mkdir(`${dir}/subdir`);
    assert.deepEqual(await bashComplete(file, `den --home ${dir}/s`), [`${dir}/subdir`]);
    assert.deepEqual(await bashComplete(file, `den env import ${dir}/den.`), [`${dir}/den.bash`]);
    assert.deepEqual(await bashComplete(file, `den daemon --passphrase-file ${dir}/d`), [
      `${dir}/den.bash`,
    ]);
    // after a complete command with nothing to offer: nothing, not every command again
    assert.deepEqual(await bashComplete(file, "den status "), []);
  });
});

// ---------------------------------------------------------------------------------------------
// zsh

/**
 * Loads the script after compinit and calls _den with `words`/CURRENT set, the completion
 * system's output functions replaced by ones that print what they were given.
 */
const ZSH_DRIVER = `
autoload -Uz compinit && compinit -u -D || exit 9
source "$1" || exit 8
[[ $_comps[den] == _den ]] || { print -u2 "den not registered: $_comps[den]"; exit 7 }
_describe() { local item; for item in "\${(@P)\${@[-1]}}"; do print -r -- "\${item%%:*}"; done }
_wanted() { print -rl -- "\${(@P)\${@[-1]}}" }
_files() { print -r -- "<files $*>" }
_message() { print -r -- "<message \${@[-1]}>" }
_command_names() { print -r -- "<commands>" }
compset() { print -r -- "<compset $*>" }
words=("\${(@)\${(z)2}}")
[[ $2 == *' ' ]] && words+=('')
CURRENT=$#words
_den
exit 0
`;

async function zshComplete(file: string, line: string): Promise<string[]> {
  const r = await sh("zsh", ["-f", "-c", ZSH_DRIVER, "drive", file, line], dirname(file));
  assert.equal(r.code, 0, `zsh completing '${line}': ${r.stderr}`);
  assert.equal(r.stderr, "", `zsh completing '${line}'`);
  return r.stdout.split("\n").filter(Boolean);
}

Deno.test({
  name: "completions: zsh script parses, loads by source and from $fpath, and completes",
  ignore: !hasZsh,
  async fn() {
    await withTemp(async (dir) => {
      const text = await script("zsh");
      assert.match(text, /^#compdef den\n/);
      await Deno.mkdir(`${dir}/fpath`);
      const file = `${dir}/fpath/_den`;
      await Deno.writeTextFile(file, text);
      const parsed = await sh("zsh", ["-n", file]);
      assert.equal(parsed.code, 0, parsed.stderr);
      assert.equal(parsed.stderr, "");
      // sourced after compinit: registers itself with compdef
      const sourced = await sh("zsh", [
        "-f",
        "-c",
        'autoload -Uz compinit; compinit -u -D; source "$1"; print -r -- $_comps[den]',
        "sourced",
        file,
      ]);
      assert.equal(sourced.stderr, "");
      assert.equal(sourced.stdout.trim(), "_den");
      // sourced without compinit: defines _den, says nothing
      const bare = await sh("zsh", ["-f", "-c", 'source "$1" && whence -w _den', "bare", file]);
      assert.equal(bare.stderr, "");
      assert.equal(bare.stdout.trim(), "_den: function");
      // dropped into $fpath as _den: compinit finds it by its #compdef line
      const autoloaded = await sh("zsh", [
        "-f",
        "-c",
        'fpath=("$1" $fpath); autoload -Uz compinit; compinit -u -D; print -r -- $_comps[den]',
        "autoloaded",
        `${dir}/fpath`,
      ]);
      assert.equal(autoloaded.stderr, "");
      assert.equal(autoloaded.stdout.trim(), "_den");

      const top = await zshComplete(file, "den ");
      includesAll(top, ["init", "env", "vpn", "service", "completions", "version"], "den ");
      assert.deepEqual(top, firstWords);
      assert.deepEqual(await zshComplete(file, "den env "), subcommands("env"));
      const flags = await zshComplete(file, "den env set --");
      assert.deepEqual(flags.toSorted(), longFlags("env set").toSorted());
      assert.deepEqual(await zshComplete(file, "den completions "), ["bash", "zsh", "fish"]);
      assert.deepEqual(await zshComplete(file, "den daemon --log-format "), ["text", "json"]);
      assert.deepEqual(await zshComplete(file, "den daemon --log-format=j"), [
        "<compset -P *=>",
        "text",
        "json",
      ]);
      assert.deepEqual(await zshComplete(file, "den peers v"), ["verify"]);
      assert.deepEqual(await zshComplete(file, "den --home "), ["<files -/>"]);
      assert.deepEqual(await zshComplete(file, "den env import "), ["<files >"]);
      assert.deepEqual(await zshComplete(file, "den ping -c "), ["<message N>"]);
    });
  },
});

/** Types `line` and TAB into an interactive zsh (zpty) and waits until `want` shows. */
const ZSH_PTY = `
zmodload zsh/zpty || exit 9
zpty z zsh -f -i
zpty -w z "PS1='%% '; $1; autoload -Uz compinit; compinit -u -D; $2; print -r READY\\$((6*7))"
local out='' chunk
integer deadline=$(( SECONDS + 20 ))
while [[ $out != *READY42* ]] && (( SECONDS < deadline )); do
  zpty -r -t z chunk && out+=$chunk || sleep 0.05
done
zpty -w -n z "$3"$'\\t'
out=''
while [[ $out != $~4 ]] && (( SECONDS < deadline )); do
  zpty -r -t z chunk && out+=$chunk || sleep 0.05
done
zpty -d z
[[ $out == $~4 ]] || { print -r -- "$out"; exit 1 }
`;

Deno.test({
  name: "completions: zsh completes in an interactive shell (zpty), sourced and from $fpath",
  ignore: !hasZsh,
  async fn() {
    await withTemp(async (dir) => {
      await Deno.mkdir(`${dir}/fpath`);
      const file = `${dir}/fpath/_den`;
      await Deno.writeTextFile(file, await script("zsh"));
      const cases: [string, string, string, string][] = [
        [`fpath=(${dir}/fpath $fpath)`, ":", "den env ", "*rollback*set variables*"],
        [":", `source ${file}`, "den completions ", "*bash*fish*zsh*"],
        [":", `source ${file}`, "den daemon --log-format=", "*json*text*"],
      ];
      for (const [before, after, line, want] of cases) {
        const r = await sh("zsh", ["-f", "-c", ZSH_PTY, "pty", before, after, line, want]);
        assert.equal(
          r.code,
          0,
          `'${line}' (${before}; ${after}) never showed ${want}: ${r.stdout}`,
        );
      }
    });
  },
});

// ---------------------------------------------------------------------------------------------
// fish

async function fishComplete(file: string, lines: string[]): Promise<Map<string, string[]>> {
  const r = await sh("fish", [
    "--no-config",
    "-c",
    'source $argv[1]; or exit 9; for l in $argv[2..-1]; echo "### $l"; complete -C $l; end',
    file,
    ...lines,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  const got = new Map<string, string[]>();
  let current = "";
  for (const l of r.stdout.split("\n").filter(Boolean)) {
    if (l.startsWith("### ")) got.set(current = l.slice(4), []);
    else got.get(current)!.push(l.split("\t")[0]);
  }
  return got;
}

Deno.test({
  name: "completions: fish script parses and completes commands, flags and values",
  ignore: !hasFish,
  async fn() {
    await withTemp(async (dir) => {
      const file = `${dir}/den.fish`;
      await Deno.writeTextFile(file, await script("fish"));
      const parsed = await sh("fish", ["--no-config", "--no-execute", file]);
      assert.equal(parsed.code, 0, parsed.stderr);
      assert.equal(parsed.stderr, "");
      await Deno.mkdir(`${dir}/subdir`);
      const got = await fishComplete(file, [
        "den ",
        "den en",
        "den env ",
        "den env set --",
        "den completions ",
        "den completions bash ",
        "den daemon --log-format ",
        "den env export --format=",
        "den peers v",
        `den --home ${dir}/s`,
        `den env import ${dir}/den.`,
        "den status ",
      ]);
      const sorted = (l: string) => got.get(l)!.toSorted();
      assert.deepEqual(sorted("den "), firstWords.toSorted());
      assert.deepEqual(got.get("den en"), ["env"]);
      includesAll(got.get("den env ")!, ["set", "get", "list"], "den env ");
      assert.deepEqual(sorted("den env "), subcommands("env").toSorted());
      assert.deepEqual(sorted("den env set --"), longFlags("env set").toSorted());
      assert.deepEqual(sorted("den completions "), ["bash", "fish", "zsh"]);
      assert.deepEqual(got.get("den completions bash "), []);
      assert.deepEqual(sorted("den daemon --log-format "), ["json", "text"]);
      assert.deepEqual(sorted("den env export --format="), [
        "--format=dotenv",
        "--format=json",
        "--format=shell",
      ]);
      assert.deepEqual(got.get("den peers v"), ["verify"]);
      assert.deepEqual(got.get(`den --home ${dir}/s`), [`${dir}/subdir/`]);
      assert.deepEqual(got.get(`den env import ${dir}/den.`), [`${dir}/den.fish`]);
      assert.deepEqual(got.get("den status "), []);
    });
  },
});

// ---------------------------------------------------------------------------------------------
// quoting: help texts reach the shells as text, never as code

const HOSTILE = `it's "quoted" (paren) a|b; $(touch PWNED) \`touch PWNED\` $HOME \\ %d: 100%`;

const hostileCommands: CommandSpec[] = [
  {
    name: "odd",
    summary: HOSTILE,
    args: "one|two-2|x.y",
    minArgs: 1,
    maxArgs: 1,
    options: {
      "weird-flag": { type: "string", value: "A|B$(touch PWNED)", help: HOSTILE },
      mode: { type: "string", value: "fast|slow", help: HOSTILE },
    },
    permissions: [],
    run: () => Promise.resolve(0),
  },
  {
    name: "odd sub",
    summary: HOSTILE,
    options: {},
    permissions: [],
    run: () => Promise.resolve(0),
  },
];

Deno.test("completions: generated strings are quoted for each shell (help with quotes, $, `)", async () => {
  await withTemp(async (dir) => {
    const pwned = () => Deno.lstat(`${dir}/PWNED`).then(() => true, () => false);
    const bash = `${dir}/den.bash`;
    await Deno.writeTextFile(bash, bashCompletion(hostileCommands));
    assert.deepEqual(await bashComplete(bash, "den odd "), ["sub", "one", "two-2", "x.y"]);
    assert.deepEqual(await bashComplete(bash, "den odd --mode "), ["fast", "slow"]);
    assert.deepEqual(await bashComplete(bash, "den odd --weird-flag "), []);
    assert.equal(await pwned(), false);

    if (hasZsh) {
      const zsh = `${dir}/_den`;
      await Deno.writeTextFile(zsh, zshCompletion(hostileCommands));
      const r = await sh("zsh", [
        "-f",
        "-c",
        'autoload -Uz compinit; compinit -u -D; source "$1"; _den_next_words ""; ' +
        'print -rl -- "${_den_reply[@]}"; _den_flags odd; print -rl -- "${_den_reply[@]}"',
        "hostile",
        zsh,
      ], dir);
      assert.equal(r.stderr, "");
      const lines = r.stdout.split("\n");
      assert.ok(lines.includes(`odd:${HOSTILE}`), r.stdout);
      assert.ok(lines.includes(`--weird-flag:${HOSTILE}`), r.stdout);
      assert.deepEqual(await zshComplete(zsh, "den odd --weird-flag "), [
        "<message A|B$(touch PWNED)>",
      ]);
      assert.equal(await pwned(), false);
    }

    if (hasFish) {
      const fish = `${dir}/den.fish`;
      await Deno.writeTextFile(fish, fishCompletion(hostileCommands));
      const r = await sh("fish", [
        "--no-config",
        "-c",
        'source $argv[1]; complete -C "den "; complete -C "den odd --w"; complete -C "den odd "',
        fish,
      ], dir);
      assert.equal(r.stderr, "");
      const lines = r.stdout.split("\n");
      assert.ok(lines.includes(`odd\t${HOSTILE}`), r.stdout);
      assert.ok(lines.includes(`--weird-flag\t${HOSTILE}`), r.stdout);
      includesAll(lines.map((l) => l.split("\t")[0]), ["sub", "one", "two-2", "x.y"], "den odd ");
      assert.equal(await pwned(), false);
    }
  });
});

// ---------------------------------------------------------------------------------------------

Deno.test("completions: an unknown shell is a usage error naming the shells", async () => {
  const r = await den(["completions", "powershell"]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /powershell/);
  for (const shell of ["bash", "zsh", "fish"]) assert.match(r.stderr, new RegExp(shell));
  const none = await den(["completions"]);
  assert.equal(none.code, 2);
});

Deno.test("completions: --help says how to install each script", async () => {
  const r = await den(["completions", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /bash-completion\/completions\/den/);
  assert.match(r.stdout, /source <\(den completions bash\)/);
  assert.match(r.stdout, /"\$\{fpath\[1\]\}\/_den"/);
  assert.match(r.stdout, /\.config\/fish\/completions\/den\.fish/);
});
