/** `den completions bash|zsh|fish`: shell completion scripts generated from the command specs. */
import { DenError, Exit } from "../errors.ts";
import { bashCompletion, fishCompletion, zshCompletion } from "./completion_scripts.ts";
import { writeOut } from "./output.ts";
import type { CommandSpec } from "./spec.ts";

const SHELLS = {
  bash: bashCompletion,
  zsh: zshCompletion,
  fish: fishCompletion,
} as const;

export const completionsCommand: CommandSpec = {
  name: "completions",
  summary: "print a shell completion script (bash, zsh or fish)",
  args: "bash|zsh|fish",
  minArgs: 1,
  maxArgs: 1,
  description: [
    "Install (then open a new shell):",
    "  bash  den completions bash > ~/.local/share/bash-completion/completions/den",
    "        or add  source <(den completions bash)  to ~/.bashrc",
    '  zsh   den completions zsh > "${fpath[1]}/_den"',
    "        or add  source <(den completions zsh)  to ~/.zshrc after compinit",
    "  fish  den completions fish > ~/.config/fish/completions/den.fish",
  ].join("\n"),
  options: {},
  permissions: [],
  async run(ctx) {
    const shell = ctx.args[0];
    if (!Object.hasOwn(SHELLS, shell)) {
      throw new DenError("usage", `unknown shell '${shell}': choose bash, zsh or fish`, {
        exit: Exit.usage,
        hint: "see den completions --help",
      });
    }
    // Imported here, not at the top: commands.ts imports this module.
    const { COMMANDS } = await import("./commands.ts");
    writeOut(SHELLS[shell as keyof typeof SHELLS](COMMANDS));
    return Exit.ok;
  },
};
