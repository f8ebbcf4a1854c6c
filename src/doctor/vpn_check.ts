/**
 * `den doctor`'s VPN check: loads the TUN shim and starts the data-plane worker on a loopback
 * port, as the daemon would, and says whether this process may open TUN devices. In a compiled
 * binary this is what proves the shim and the worker module were embedded.
 */
import type { DenPaths } from "../config/paths.ts";
import { Logger } from "../log/logger.ts";
import { DataPlane } from "../vpn/dataplane/dataplane.ts";
import { vpnUnavailable } from "../vpn/ip_link.ts";
import { loadTunShim, TUN_SHIM_ABI, type TunShim } from "../vpn/tun/shim_path.ts";
import type { CheckResult } from "./checks.ts";

const check = "vpn";

export async function vpnCheck(
  paths: DenPaths,
  unavailable: () => string | null = vpnUnavailable,
): Promise<CheckResult> {
  let shim: TunShim;
  try {
    shim = await loadTunShim({ cacheDir: `${paths.dataDir}/shim` });
  } catch (err) {
    // A release binary always carries the shim; from source it may not be built yet.
    return {
      check,
      status: Deno.build.standalone ? "fail" : "warn",
      detail: `VPN off: cannot load the TUN shim: ${err instanceof Error ? err.message : err}`,
      fix: Deno.build.standalone ? "reinstall den" : "build it with scripts/build-shim",
    };
  }
  let dp: DataPlane | null = null;
  try {
    dp = await DataPlane.start({
      shimPath: shim.path,
      bind: `127.0.0.1:${freeUdpPort()}`,
      log: new Logger("doctor", { sink: () => {} }),
      onSession: () => {},
      // A loaded machine may be slow to start the worker; only its failing is a finding.
      readyTimeoutMs: 20_000,
    });
    const parts = [`TUN shim ABI ${TUN_SHIM_ABI} (sha256 ${shim.sha256.slice(0, 12)})`];
    if (dp.udpError) {
      return {
        check,
        status: "fail",
        detail: `${parts[0]} loaded, but the data plane did not start: ${dp.udpError}`,
        fix: "reinstall den; if it persists, report it with the output of den version",
      };
    }
    parts.push("data plane ok");
    const why = unavailable();
    if (why) {
      return {
        check,
        status: "warn",
        detail: `${parts.join(", ")}; VPN off: ${why}`,
        fix: VPN_FIX,
      };
    }
    return { check, status: "ok", detail: `${parts.join(", ")}; can open TUN devices` };
  } finally {
    await dp?.stop();
    shim.close();
  }
}

/** The worker wants a fixed port; ask the kernel for one that is free right now. */
function freeUdpPort(): number {
  const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const port = (sock.addr as Deno.NetAddr).port;
  sock.close();
  return port;
}

const VPN_FIX = "run the daemon as root, or install it with sudo den service install " +
  "(it then runs as you with CAP_NET_ADMIN)";
