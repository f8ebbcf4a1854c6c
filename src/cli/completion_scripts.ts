/**
 * Shell completion scripts for bash, zsh and fish, generated from the command specs so a new
 * command, flag or choice is completed without touching this file.
 *
 * All three scripts walk the words before the cursor the way dispatch.ts does: command words
 * extend while they still prefix a command name (`peers verify`), flags are skipped together
 * with their value, and what is left are positional arguments. What to offer then comes from
 * generated lookup functions: the words that may follow, a command's flags, how a flag's value
 * completes (an enumeration like `text|json`, FILE, DIR), and how each positional completes.
 */
import { type CommandSpec, GLOBAL_OPTIONS, type OptionSpec } from "./spec.ts";

/** How a flag's value or a positional argument completes. */
export type ValueKind =
  | { kind: "none" }
  | { kind: "value"; hint: string }
  | { kind: "file" }
  | { kind: "dir" }
  | { kind: "command" }
  | { kind: "choice"; words: string[] };

const CHOICES = /^[a-z0-9][a-z0-9_.+-]*(\|[a-z0-9][a-z0-9_.+-]*)+$/;

/** `text|json` → choices; FILE, DIR, CMD; anything else is a value only the user knows. */
export function placeholderKind(placeholder: string): ValueKind {
  const p = placeholder.replace(/^\[|\]$/g, "").replace(/(…|\.\.\.)$/, "");
  if (CHOICES.test(p)) return { kind: "choice", words: p.split("|") };
  if (/(^|[_-])FILE$|^PATH$|^ARG$/.test(p)) return { kind: "file" };
  if (/(^|[_-])DIR$/.test(p)) return { kind: "dir" };
  if (/^(CMD|COMMAND)$/.test(p)) return { kind: "command" };
  return { kind: "value", hint: p };
}

/** Positional slots of `args` ("NAME [HOST:PORT]", "-- CMD [ARG…]"); the last may repeat. */
export function argSlots(args: string | undefined): { slots: ValueKind[]; repeats: boolean } {
  const words = (args ?? "").split(/\s+/).filter((w) => w && w !== "--");
  const last = words.at(-1)?.replace(/^\[|\]$/g, "") ?? "";
  return { slots: words.map(placeholderKind), repeats: /(…|\.\.\.)$/.test(last) };
}

interface Flag {
  long: string;
  short?: string;
  help: string;
  value: ValueKind;
}

interface Word {
  word: string;
  description: string;
}

interface Model {
  /** Every command name and every group prefix of one ("team" for "team create"). */
  prefixes: string[];
  commands: readonly CommandSpec[];
  /** Words that may follow a prefix ("" for the first word), in COMMANDS order. */
  next: Map<string, Word[]>;
  globals: Flag[];
}

function flags(options: Record<string, OptionSpec>): Flag[] {
  return Object.entries(options).map(([long, o]) => ({
    long,
    short: o.short,
    help: oneLine(o.help + (o.multiple ? " (repeatable)" : "")),
    value: o.type === "boolean" ? { kind: "none" } : placeholderKind(o.value ?? ""),
  }));
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

function buildModel(commands: readonly CommandSpec[]): Model {
  const next = new Map<string, Word[]>();
  const prefixes: string[] = [];
  for (const c of commands) {
    const words = c.name.split(" ");
    for (let i = 0; i < words.length; i++) {
      const group = words.slice(0, i).join(" ");
      const path = words.slice(0, i + 1).join(" ");
      if (!prefixes.includes(path)) prefixes.push(path);
      const list = next.get(group) ?? [];
      if (!list.some((w) => w.word === words[i])) {
        list.push({ word: words[i], description: "" });
        next.set(group, list);
      }
    }
  }
  for (const [group, list] of next) {
    for (const w of list) {
      const path = group ? `${group} ${w.word}` : w.word;
      const cmd = commands.find((c) => c.name === path);
      const subs = (next.get(path) ?? []).map((s) => s.word);
      w.description = oneLine(cmd ? cmd.summary : `commands: ${subs.join(", ")}`);
    }
  }
  return { prefixes, commands, next, globals: flags(GLOBAL_OPTIONS) };
}

// ---------------------------------------------------------------------------------------------
// bash and zsh share the lookup functions (POSIX-ish `case`, arrays); zsh adds descriptions.

/** A literal for bash and zsh: single quotes, a quote inside as '\''. */
export function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function shArray(items: string[]): string {
  return `(${items.map(shQuote).join(" ")})`;
}

/** `name:description` for zsh's _describe (a colon in the name is escaped). */
function described(name: string, description: string): string {
  return `${name.replaceAll(":", "\\:")}:${description}`;
}

/** Sets _den_kind (and _den_reply: the choices, or the placeholder of a free value). */
function shKind(v: ValueKind): string {
  switch (v.kind) {
    case "choice":
      return `_den_kind=choice _den_reply=${shArray(v.words)}`;
    case "value":
      return `_den_kind=value _den_reply=${shArray([v.hint])}`;
    default:
      return `_den_kind=${v.kind}`;
  }
}

function shCase(subject: string, arms: [string[], string][], fallback: string): string {
  const lines = [`  case ${subject} in`];
  for (const [patterns, body] of arms) {
    const pattern = patterns.map(shQuote).join("|");
    if (!body.includes("\n")) lines.push(`    ${pattern}) ${body} ;;`);
    else lines.push(`    ${pattern})`, body.replace(/^/gm, "      "), `      ;;`);
  }
  lines.push(`    *) ${fallback} ;;`, "  esac");
  return lines.join("\n");
}

function flagArms(list: Flag[]): [string[], string][] {
  return list.filter((f) => f.value.kind !== "none").map((f) => [
    [`--${f.long}`, ...(f.short ? [`-${f.short}`] : [])],
    shKind(f.value),
  ]);
}

function argArms(cmd: CommandSpec): string {
  const { slots, repeats } = argSlots(cmd.args);
  const arms: string[] = [];
  slots.forEach((v, i) => {
    if (v.kind === "none") return;
    const pattern = repeats && i === slots.length - 1 ? "*" : String(i);
    arms.push(`${pattern}) ${shKind(v)} ;;`);
  });
  return arms.length ? `case $2 in ${arms.join(" ")} esac` : "";
}

function shLookups(model: Model, zsh: boolean): string {
  const { commands } = model;
  const word = (w: Word) => zsh ? described(w.word, w.description) : w.word;
  const flag = (f: Flag) => zsh ? described(`--${f.long}`, f.help) : `--${f.long}`;
  const withArgs = commands.filter((c) => argArms(c));
  return [
    `# $1 is a command or a group of commands ("team" of "team create").`,
    `_den_prefix() {`,
    shCase(`$1`, model.prefixes.map((p) => [[p], "return 0"]), "return 1"),
    `}`,
    ``,
    `_den_command() {`,
    shCase(`$1`, commands.map((c) => [[c.name], "return 0"]), "return 1"),
    `}`,
    ``,
    `# The words that may follow the command words $1 ("" at the start).`,
    `_den_next_words() {`,
    shCase(
      `$1`,
      [...model.next].map(([g, ws]) => [[g], `_den_reply=${shArray(ws.map(word))}`]),
      "_den_reply=()",
    ),
    `}`,
    ``,
    `# The long flags of command $1 (every command takes the global ones).`,
    `_den_flags() {`,
    shCase(
      `$1`,
      commands.filter((c) => Object.keys(c.options).length).map((c) => [
        [c.name],
        `_den_reply=${shArray(flags(c.options).map(flag))}`,
      ]),
      "_den_reply=()",
    ),
    `  _den_reply+=${shArray(model.globals.map(flag))}`,
    `}`,
    ``,
    `# How the value of flag $2 of command $1 completes: none (the flag takes none), value,`,
    `# file, dir, command or choice (the words are in _den_reply).`,
    `_den_flag() {`,
    `  _den_kind=none _den_reply=()`,
    shCase(
      `$1`,
      commands.filter((c) => flagArms(flags(c.options)).length).map((c) => [
        [c.name],
        shCase(`$2`, flagArms(flags(c.options)), ":").replace(/^ {2}/gm, ""),
      ]),
      ":",
    ),
    `  if [[ $_den_kind == none ]]; then`,
    shCase(`$2`, flagArms(model.globals), ":").replace(/^/gm, "  "),
    `  fi`,
    `}`,
    ``,
    `# How positional argument $2 (from 0) of command $1 completes, as for _den_flag.`,
    `_den_arg() {`,
    `  _den_kind=none _den_reply=()`,
    shCase(`$1`, withArgs.map((c) => [[c.name], argArms(c)]), ":"),
    `}`,
  ].join("\n");
}

/**
 * The walk over the words before the cursor, shared by bash and zsh. `W` is the words array,
 * `C` the cursor's index in it, `FIRST` the index of the word after `den`.
 */
function shWalk(W: string, C: string, FIRST: number, bashSplitsEquals: boolean): string {
  const inline = bashSplitsEquals
    ? [
      `      if [[ \${${W}[i+1]-} == = ]]; then`,
      `        # bash splits --flag=value at '=' (COMP_WORDBREAKS): the value may be at the cursor`,
      `        if (( i + 1 == ${C} )); then flag=$w cur=''; elif (( i + 2 == ${C} )); then flag=$w; fi`,
      `        (( i += 2 ))`,
      `      elif [[ $w != *=* ]]; then`,
    ]
    : [`      if [[ $w != *=* ]]; then`];
  return [
    `  local group='' cmd='' w flag='' _den_kind=''`,
    `  local -a _den_reply`,
    `  local i=${FIRST} npath=0 ncmd=0 npos=0 dashdash=0 more=1`,
    `  while (( i < ${C} )); do`,
    `    w=\${${W}[i]}`,
    `    if (( dashdash )); then`,
    `      (( ++npos ))`,
    `    elif [[ $w == -- ]]; then`,
    `      dashdash=1 more=0`,
    `    elif [[ $w == -?* ]]; then`,
    ...inline,
    `        _den_flag "$cmd" "$w"`,
    `        if [[ $_den_kind != none ]]; then`,
    `          if (( i + 1 == ${C} )); then flag=$w; fi`,
    `          (( ++i ))`,
    `        fi`,
    `      fi`,
    `    elif (( more )) && _den_prefix "\${group:+$group }$w"; then`,
    `      group=\${group:+$group }$w`,
    `      (( ++npath ))`,
    `      if _den_command "$group"; then cmd=$group ncmd=$npath; fi`,
    `    else`,
    `      more=0`,
    `      (( ++npos ))`,
    `    fi`,
    `    (( ++i ))`,
    `  done`,
    `  # words after the command that looked like subcommands are its arguments (\`peers NAME\`)`,
    `  npos=$(( npos + npath - ncmd ))`,
  ].join("\n");
}

const HEADER_NOTE = "Generated from den's command specs";

/** The bash script: `complete -F _den den`. Needs no bash-completion package. */
export function bashCompletion(commands: readonly CommandSpec[]): string {
  const model = buildModel(commands);
  return `# bash completion for den — ${HEADER_NOTE} by \`den completions bash\`.
# Install: den completions bash > ~/.local/share/bash-completion/completions/den
#      or: source <(den completions bash)   (in ~/.bashrc)

${shLookups(model, false)}

# Adds to COMPREPLY what completes $cur as _den_kind says; $1 goes before each word.
_den_complete() {
  local w
  case $_den_kind in
    file|dir|command)
      [[ $_den_kind == command ]] || compopt -o filenames 2>/dev/null
      while IFS= read -r w; do COMPREPLY+=("$1$w"); done < <(compgen -"\${_den_kind:0:1}" -- "$cur")
      ;;
    choice|words)
      for w in "\${_den_reply[@]}"; do
        if [[ $w == "$cur"* ]]; then COMPREPLY+=("$1$w"); fi
      done
      ;;
  esac
}

_den() {
  local cur=\${COMP_WORDS[COMP_CWORD]-} pre=''
${shWalk("COMP_WORDS", "COMP_CWORD", 1, true)}
  COMPREPLY=()
  if [[ -z $flag && $dashdash == 0 && $cur == --?*=* ]]; then
    flag=\${cur%%=*} pre=\${cur%%=*}= cur=\${cur#*=}
  fi
  if [[ -n $flag ]]; then
    _den_flag "$cmd" "$flag"
    _den_complete "$pre"
  elif [[ $cur == -* && $dashdash == 0 ]]; then
    _den_flags "$cmd"
    _den_kind=words
    _den_complete ''
  else
    if (( more )); then
      _den_next_words "$group"
      _den_kind=words
      _den_complete ''
    fi
    if [[ -n $cmd ]]; then
      _den_arg "$cmd" "$npos"
      _den_complete ''
    fi
  fi
  return 0
}

complete -F _den den
`;
}

/**
 * The zsh script: works as `_den` in a directory of $fpath (compinit autoloads it by the
 * `#compdef` line) and when sourced (it calls compdef itself).
 */
export function zshCompletion(commands: readonly CommandSpec[]): string {
  const model = buildModel(commands);
  return `#compdef den
# zsh completion for den — ${HEADER_NOTE} by \`den completions zsh\`.
# Install: den completions zsh > "\${fpath[1]}/_den"   (then restart zsh)
#      or: source <(den completions zsh)   (in ~/.zshrc, after compinit)

${shLookups(model, true)}

# Offers what _den_kind says; $1 names the thing completed.
_den_values() {
  local expl
  case $_den_kind in
    choice) _wanted values expl "$1" compadd -a _den_reply ;;
    file) _files ;;
    dir) _files -/ ;;
    command) _command_names -e ;;
    value) _message -e values "\${_den_reply[1]}" ;;
    *) return 1 ;;
  esac
}

# (No emulate -L: compinit already runs completion functions with its own options, which
# _files and _describe need.)
_den() {
  local cur=\${words[CURRENT]}
${shWalk("words", "CURRENT", 2, false)}
  if [[ -z $flag && $dashdash == 0 && $cur == --?*=* ]]; then
    flag=\${cur%%=*}
    compset -P '*='
  fi
  if [[ -n $flag ]]; then
    _den_flag "$cmd" "$flag"
    _den_values "value of $flag"
    return
  fi
  if [[ $cur == -* && $dashdash == 0 ]]; then
    _den_flags "$cmd"
    _describe -t options option _den_reply
    return
  fi
  local ret=1
  if (( more )); then
    _den_next_words "$group"
    if (( $#_den_reply )); then _describe -t commands 'den command' _den_reply && ret=0; fi
  fi
  if [[ -n $cmd ]]; then
    _den_arg "$cmd" "$npos"
    _den_values argument && ret=0
  fi
  return ret
}

if [[ \${funcstack[1]-} == _den ]]; then
  # autoloaded from $fpath by compinit: this file is the body of _den, so complete now
  _den "$@"
elif (( $+functions[compdef] )); then
  compdef _den den
fi
`;
}

// ---------------------------------------------------------------------------------------------

/** A literal for fish: single quotes, where only \\ and \\' are escapes. */
export function fishQuote(s: string): string {
  return `'${s.replace(/[\\']/g, "\\$&")}'`;
}

function fishArg(s: string): string {
  return /^[\w.,:@%+=/-]+$/.test(s) ? s : fishQuote(s);
}

/** `complete` flags that complete a value as `v` says (-r: the option takes one). */
function fishValue(v: ValueKind): string {
  switch (v.kind) {
    case "none":
      return "";
    case "choice":
      return ` -x -a ${fishQuote(v.words.map(fishArg).join(" "))}`;
    case "file":
      return " -r -F";
    case "dir":
      return ` -x -a ${fishQuote("(__fish_complete_directories (commandline -ct))")}`;
    case "command":
      return ` -x -a ${fishQuote("(__fish_complete_command)")}`;
    case "value":
      return " -x";
  }
}

function fishIf(subject: string, arms: [string, string][], fallback: string): string {
  if (!arms.length) return `    ${fallback}`;
  const lines = arms.map(([value, body], i) =>
    `    ${i ? "else if" : "if"} test ${subject} = ${fishQuote(value)}\n        ${body}`
  );
  return [...lines, `    else\n        ${fallback}`, `    end`].join("\n");
}

/** The fish script: `complete -c den` lines guarded by where the command line stands. */
export function fishCompletion(commands: readonly CommandSpec[]): string {
  const model = buildModel(commands);
  const cond = (fn: string, ...args: string[]) =>
    `-n ${fishQuote([fn, ...args.map(fishArg)].join(" "))}`;
  const lines: string[] = [];
  for (const [group, words] of model.next) {
    for (const w of words) {
      lines.push(
        `complete -c den ${cond("__den_at_group", group)} -a ${fishQuote(fishArg(w.word))} -d ${
          fishQuote(w.description)
        }`,
      );
    }
  }
  const flagLine = (f: Flag, guard: string) =>
    `complete -c den${guard}${f.short ? ` -s ${fishArg(f.short)}` : ""} -l ${fishArg(f.long)}${
      fishValue(f.value)
    } -d ${fishQuote(f.help)}`;
  for (const c of commands) {
    for (const f of flags(c.options)) {
      lines.push(flagLine(f, ` ${cond("__den_at_command", c.name)}`));
    }
    const { slots, repeats } = argSlots(c.args);
    slots.forEach((v, i) => {
      if (v.kind === "none" || v.kind === "value") return;
      const from = repeats && i === slots.length - 1 ? ["on"] : [];
      lines.push(
        `complete -c den ${cond("__den_at_arg", c.name, String(i), ...from)}${
          fishValue(v).replace(" -r -F", " -F")
        }`,
      );
    });
  }
  for (const f of model.globals) lines.push(flagLine(f, ""));
  const valueFlags = (list: Flag[]) =>
    list.filter((f) => f.value.kind !== "none").flatMap((f) => [
      `--${f.long}`,
      ...(f.short ? [`-${f.short}`] : []),
    ]);
  const takesValue = fishIf(
    `"$argv[1]"`,
    commands.filter((c) => valueFlags(flags(c.options)).length).map((c) => [
      c.name,
      `contains -- $argv[2] ${valueFlags(flags(c.options)).map(fishArg).join(" ")}; and return 0`,
    ]),
    "true",
  );
  return `# fish completion for den — ${HEADER_NOTE} by \`den completions fish\`.
# Install: den completions fish > ~/.config/fish/completions/den.fish

function __den_prefix --description 'den: is $argv[1] a command or a group of commands'
    contains -- $argv[1] ${model.prefixes.map(fishArg).join(" ")}
end

function __den_command --description 'den: is $argv[1] a command'
    contains -- $argv[1] ${commands.map((c) => fishArg(c.name)).join(" ")}
end

function __den_takes_value --description 'den: does flag $argv[2] of command $argv[1] take a value'
${takesValue}
    contains -- $argv[2] ${valueFlags(model.globals).map(fishArg).join(" ")}
end

# Prints: more-command-words-may-follow, positionals-so-far, after-\`--\`, g:GROUP, c:COMMAND.
# Every condition below asks, so the answer is kept for the words it was computed from.
function __den_state --description 'den: where the command line stands'
    set -l tokens (commandline -opc)
    set -l key (string join \\n -- $tokens)
    if set -q __den_state_key; and test "$__den_state_key" = "$key"
        printf '%s\\n' $__den_state_value
        return
    end
    set -e tokens[1]
    set -l group ''
    set -l cmd ''
    set -l npath 0
    set -l ncmd 0
    set -l npos 0
    set -l dashdash 0
    set -l more 1
    set -l skip 0
    for w in $tokens
        if test $skip = 1
            set skip 0
        else if test $dashdash = 1
            set npos (math $npos + 1)
        else if test "$w" = --
            set dashdash 1
            set more 0
        else if string match -qr -- '^-.' $w
            if not string match -q -- '*=*' $w; and __den_takes_value "$cmd" $w
                set skip 1
            end
        else if test $more = 1; and __den_prefix (string trim -- "$group $w")
            set group (string trim -- "$group $w")
            set npath (math $npath + 1)
            if __den_command "$group"
                set cmd $group
                set ncmd $npath
            end
        else
            set more 0
            set npos (math $npos + 1)
        end
    end
    set -g __den_state_key $key
    set -g __den_state_value "$more "(math $npos + $npath - $ncmd)" $dashdash" "g:$group" "c:$cmd"
    printf '%s\\n' $__den_state_value
end

function __den_at_group --description 'den: may the next word extend command words $argv[1]'
    set -l st (__den_state)
    string match -q '1 *' -- $st[1]; and test "$st[2]" = "g:$argv[1]"
end

function __den_at_command --description 'den: is the command $argv[1] (and no -- yet)'
    set -l st (__den_state)
    string match -q '* 0' -- $st[1]; and test "$st[3]" = "c:$argv[1]"
end

function __den_at_arg --description 'den: is the next word argument $argv[2] (or later, with $argv[3]) of command $argv[1]'
    set -l st (__den_state)
    test "$st[3]" = "c:$argv[1]"; or return 1
    set -l n (string split ' ' -- $st[1])[2]
    if set -q argv[3]
        test $n -ge $argv[2]
    else
        test $n -eq $argv[2]
    end
end

complete -c den -f
${lines.join("\n")}
`;
}
