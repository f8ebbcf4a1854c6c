/**
 * The TUN shim and TunDevice: loading the shim through its hash-named cache copy, and a real TUN
 * device in a network namespace this test makes (reads, batched reads, writes the kernel
 * delivers, read timeouts, close). The device part runs in tests/support/tun_probe.ts started
 * inside the namespace, because a TUN device appears in the namespace of the process opening it.
 * Needs root, iproute2 and ping for the namespace part; the shim is (re)built with
 * scripts/build-shim when a C compiler is there.
 */
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { NetnsLab, netnsUnavailable, onPath } from "../../scripts/lib/netns.ts";
import { toHex } from "../../src/crypto/encoding.ts";
import { DenError } from "../../src/errors.ts";
import { loadTunShim, shimFileName, TUN_SHIM_ABI } from "../../src/vpn/tun/shim_path.ts";
import { errnoText } from "../../src/vpn/tun/tun_device.ts";
import type { ProbeResult } from "../support/tun_probe.ts";

const root = new URL("../../", import.meta.url).pathname;
const probe = new URL("../support/tun_probe.ts", import.meta.url).pathname;

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const supported = (Deno.build.os === "linux" || Deno.build.os === "darwin") &&
  (Deno.build.arch === "x86_64" || Deno.build.arch === "aarch64");
const shimPath = supported
  ? `${root}dist/shim/${shimFileName(Deno.build.os, Deno.build.arch)}`
  : "";
const compiler = (Deno.env.get("CC") ?? "cc").split(/\s+/)[0];
const haveCompiler = supported && onPath(compiler);

const whyNoShim = !supported
  ? `the TUN shim needs Linux or macOS on x86_64/aarch64 (this is ${Deno.build.target})`
  : !haveCompiler && !exists(shimPath)
  ? `no C compiler (${compiler}) to build ${shimPath} with scripts/build-shim`
  : null;
const whyNoNetns = whyNoShim ?? netnsUnavailable();
if (whyNoShim) console.warn(`SKIPPED TUN shim tests: ${whyNoShim}`);
else if (whyNoNetns) console.warn(`SKIPPED TUN device namespace test: ${whyNoNetns}`);

/** The reason in the test name too, so that it shows under `deno test --quiet`. */
function skipNote(why: string | null): string {
  return why ? ` (SKIPPED: ${why})` : "";
}

let built: Promise<void> | null = null;

/** Builds the shim from the current source when a compiler is there (idempotent). */
function ensureShim(): Promise<void> {
  built ??= (async () => {
    if (!haveCompiler) return;
    const out = await new Deno.Command("bash", {
      args: [`${root}scripts/build-shim`],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    assert.ok(out.success, `scripts/build-shim failed:\n${dec.decode(out.stderr)}`);
    assert.ok(exists(shimPath), `scripts/build-shim did not produce ${shimPath}`);
  })();
  return built;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource)));
}

Deno.test({
  name: "loadTunShim: hash-named 0600 copy in a 0700 cache dir, reused, replaced when tampered" +
    skipNote(whyNoShim),
  ignore: whyNoShim !== null,
  async fn() {
    await ensureShim();
    const dir = await Deno.makeTempDir({ prefix: "den-tun-shim-" });
    try {
      const cache = join(dir, "cache");
      const expected = await sha256(await Deno.readFile(shimPath));

      const a = await loadTunShim({ cacheDir: cache });
      try {
        assert.equal(a.symbols.den_tun_abi_version(), TUN_SHIM_ABI);
      } finally {
        a.close();
      }
      assert.equal(a.sha256, expected);
      const ext = Deno.build.os === "darwin" ? "dylib" : "so";
      assert.equal(basename(a.path), `libden_tun-${expected.slice(0, 16)}.${ext}`);
      assert.equal(join(cache, basename(a.path)), a.path);
      const st1 = await Deno.stat(a.path);
      assert.equal(st1.mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(cache)).mode! & 0o777, 0o700);

      // Second load: the same file, not rewritten.
      const b = await loadTunShim({ cacheDir: cache });
      b.close();
      assert.equal(b.path, a.path);
      const st2 = await Deno.stat(b.path);
      assert.equal(st2.ino, st1.ino);
      assert.equal(st2.mtime?.getTime(), st1.mtime?.getTime());

      // A tampered copy (same name, other bytes) is replaced by the real library.
      await Deno.remove(a.path);
      await Deno.writeFile(a.path, new TextEncoder().encode("not a library"), { mode: 0o600 });
      const c = await loadTunShim({ cacheDir: cache });
      try {
        assert.equal(c.symbols.den_tun_abi_version(), TUN_SHIM_ABI);
      } finally {
        c.close();
      }
      assert.equal(c.path, a.path);
      assert.equal(await sha256(await Deno.readFile(c.path)), expected);
      assert.equal((await Deno.stat(c.path)).mode! & 0o777, 0o600);

      // A copy with loose permissions is rewritten 0600.
      await Deno.chmod(a.path, 0o644);
      const d = await loadTunShim({ cacheDir: cache });
      d.close();
      assert.equal((await Deno.stat(d.path)).mode! & 0o777, 0o600);

      // A cache directory others can write to is refused.
      const open = join(dir, "open");
      await Deno.mkdir(open);
      await Deno.chmod(open, 0o777);
      await assert.rejects(
        () => loadTunShim({ cacheDir: open }),
        (e) => e instanceof DenError && e.code === "insecure_shim_cache",
      );

      assert.throws(
        () => shimFileName("windows", "x86_64"),
        (e) => e instanceof DenError && e.code === "no_tun_shim",
      );
      assert.equal(shimFileName("darwin", "aarch64"), "libden_tun-darwin-aarch64.dylib");
      assert.equal(shimFileName("linux", "x86_64"), "libden_tun-linux-x86_64.so");
      if (Deno.build.os === "linux") {
        assert.match(errnoText(1), /^EPERM \(needs root or CAP_NET_ADMIN\)$/);
        assert.match(errnoText(16), /^EBUSY/);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "TunDevice in a network namespace: reads, batched reads, writes delivered, timeout, close" +
    skipNote(whyNoNetns),
  ignore: whyNoNetns !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await ensureShim();
    const lab = new NetnsLab();
    const cache = await Deno.makeTempDir({ prefix: "den-tun-cache-" });
    try {
      const ns = await lab.ns("tun");
      const out = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns,
          Deno.execPath(),
          "run",
          "--quiet",
          "--unstable-net",
          "--allow-all",
          probe,
          "--cache",
          cache,
          "--name",
          "dentest0",
          "--mtu",
          "1400",
        ],
        cwd: root,
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(90_000),
      }).output();
      const dec = new TextDecoder();
      const stderr = dec.decode(out.stderr);
      assert.ok(out.success, `tun probe failed (${out.code}):\n${stderr}`);
      const r = JSON.parse(dec.decode(out.stdout)) as ProbeResult;
      const show = JSON.stringify(r);
      if (Deno.env.get("DEN_TUN_VERBOSE")) console.log(`tun probe: ${show}`);

      assert.equal(r.name, "dentest0");
      assert.equal(r.mtu, 1400);
      assert.equal(r.linkMtu, 1400, show);
      assert.match(r.busyError, /EBUSY/, show);
      assert.match(r.autoName, /^tun\d+$/, show);

      // (a) datagrams to 10.77.0.2 come out of the device as IPv4/UDP with valid checksums;
      // (b) echo replies written in one batch (a rejected packet in the middle is skipped) are
      // delivered to the sending socket.
      const want = [0, 1, 2].map((i) => `echo-${r.udp.tag}-${i}`);
      assert.equal(r.udp.read, 3, show);
      assert.deepEqual(r.udp.payloadsRead, want, show);
      assert.ok(r.udp.checksumsValid, show);
      assert.equal(r.udp.written, 3, show);
      assert.deepEqual([...r.udp.echoed].sort(), want, show);
      assert.equal(r.udp.from, "10.77.0.2:7", show);
      if (r.ping) {
        assert.equal(r.ping.requests, 3, show);
        assert.equal(r.ping.repliesWritten, 3, show);
        assert.equal(r.ping.pingExit, 0, show);
        assert.match(r.ping.pingSummary, /3 packets transmitted, 3 received/, show);
      } else {
        console.warn("TUN device test: ping is not installed; its ICMP echo step was left out");
      }

      // (c) queued packets come back several at a time.
      assert.equal(r.batch.total, r.batch.sent, show);
      assert.ok(r.batch.firstBatch > 1, show);
      assert.ok(r.batch.allUdpToPeer, show);

      // (d) an idle read returns [] after about its timeout.
      assert.equal(r.idle.packets, 0, show);
      assert.ok(r.idle.elapsedMs >= r.idle.timeoutMs - 20, show);
      assert.ok(r.idle.elapsedMs < r.idle.timeoutMs + 1000, show);

      // Figures: forwarded back out of the device (only that it worked is asserted).
      assert.ok(r.bench, r.benchError ?? show);
      assert.equal(r.bench.returned, r.bench.packets, show);

      // (e) close(): the pending read returns [], reads/writes after close do nothing, the
      // interface is gone.
      assert.equal(r.close.pendingReadResult, 0, show);
      assert.equal(r.close.readAfterClose, 0, show);
      assert.equal(r.close.writeAfterClose, 0, show);
      assert.ok(r.close.linkGone, show);
      const after = await new Deno.Command("ip", {
        args: ["netns", "exec", ns, "ip", "link", "show", "dentest0"],
        stdout: "null",
        stderr: "null",
      }).output();
      assert.equal(after.success, false, "dentest0 still exists after the probe closed it");
    } finally {
      await lab.destroy();
      await Deno.remove(cache, { recursive: true });
    }
  },
});
