/** Each command runs with only the Deno permissions it declares (checked in a child process). */
import assert from "node:assert/strict";

const dispatch = new URL("../../src/cli/dispatch.ts", import.meta.url).href;

Deno.test("dispatch: permissions a command does not declare are revoked before it runs", async () => {
  const code = `
    import { runCli } from "${dispatch}";
    const names = ["read", "write", "net", "env", "sys", "run", "ffi"];
    const probe = {
      name: "probe", summary: "", options: {}, permissions: ["read", "net"],
      run() {
        const states = names.map((name) => name + "=" + Deno.permissions.querySync({ name }).state);
        console.log(states.join(" "));
        return Promise.resolve(0);
      },
    };
    Deno.exit(await runCli(["probe"], [probe]));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(
    text,
    "read=granted write=prompt net=granted env=prompt sys=prompt run=prompt ffi=prompt",
  );
});
