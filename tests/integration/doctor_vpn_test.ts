/**
 * `den doctor`'s vpn check with the real shim and the real data-plane worker: what a release
 * binary's doctor run proves (the embedded files load), and what a user without CAP_NET_ADMIN sees.
 */
import assert from "node:assert/strict";
import { den, initNode } from "../../scripts/lib/den_process.ts";
import { resolvePaths } from "../../src/config/paths.ts";
import { vpnCheck } from "../../src/doctor/vpn_check.ts";
import { shimFileName } from "../../src/vpn/tun/shim_path.ts";

const root = new URL("../../", import.meta.url).pathname;

function shimMissing(): string | null {
  try {
    const file = `${root}dist/shim/${shimFileName(Deno.build.os, Deno.build.arch)}`;
    Deno.statSync(file);
    return null;
  } catch (err) {
    return `no TUN shim built (scripts/build-shim): ${err instanceof Error ? err.message : err}`;
  }
}
const whyNot = shimMissing();
if (whyNot) console.warn(`SKIPPED doctor vpn tests: ${whyNot}`);

async function withHome(fn: (home: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "den-doctor-vpn-" });
  try {
    await fn(`${dir}/n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "doctor vpn: loads the shim and starts the data plane; says why the VPN would be off",
  ignore: whyNot !== null,
  async fn() {
    await withHome(async (home) => {
      const paths = resolvePaths({ home, env: () => undefined });
      const ok = await vpnCheck(paths, () => null);
      assert.equal(ok.status, "ok", ok.detail);
      assert.match(ok.detail, /TUN shim ABI \d+ \(sha256 [0-9a-f]{12}\), data plane ok/);
      const off = await vpnCheck(paths, () => "the VPN needs root or CAP_NET_ADMIN");
      assert.equal(off.status, "warn");
      assert.match(off.detail, /VPN off: the VPN needs root or CAP_NET_ADMIN/);
      assert.match(off.fix ?? "", /sudo den service install/);
    });
  },
});

Deno.test({
  name: "doctor vpn: the CLI reports the check (its permissions allow FFI and the worker)",
  ignore: whyNot !== null,
  async fn() {
    await withHome(async (home) => {
      await initNode(home, "n");
      const r = await den(["doctor", "--json", "--home", home]);
      const vpn = JSON.parse(r.stdout).checks.find((c: { check: string }) => c.check === "vpn");
      assert.ok(vpn, r.stdout + r.stderr);
      assert.equal(vpn.status, Deno.uid() === 0 ? "ok" : "warn", vpn.detail);
    });
  },
});
