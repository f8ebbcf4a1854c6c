/** `den version`: what binary this is. */
import { BUILD_COMMIT } from "../build_info.ts";
import { VERSION } from "../version.ts";
import { printJson, writeOut } from "./output.ts";
import { type CommandSpec, JSON_OPTION } from "./spec.ts";

export const versionCommand: CommandSpec = {
  name: "version",
  summary: "print version, commit, Deno version and target",
  options: { ...JSON_OPTION },
  permissions: [],
  run(ctx) {
    const info = {
      version: VERSION,
      commit: BUILD_COMMIT,
      deno: Deno.version.deno,
      target: Deno.build.target,
    };
    if (ctx.bool("json")) printJson(info);
    else {writeOut(
        `den ${info.version} (commit ${info.commit}, deno ${info.deno}, ${info.target})\n`,
      );}
    return Promise.resolve(0);
  },
};
