/**
 * The kernel side of a VPN network through iproute2: interface address, MTU, link state, and a
 * route per subnet a peer serves. Thin on purpose: every call is one `ip` command whose failure
 * is an error naming the command and what `ip` said.
 */
import { DenError } from "../errors.ts";

export type IpRunner = (args: string[]) => Promise<void>;

/** Runs `ip ARGS…`; a failure names the command and carries ip's message. */
export const runIp: IpRunner = async (args) => {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  } catch (err) {
    throw new DenError(
      "no_iproute2",
      `cannot run ip: ${err instanceof Error ? err.message : err}`,
      {
        hint: "install iproute2 (apt install iproute2)",
      },
    );
  }
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim();
    throw new DenError("ip_failed", `ip ${args.join(" ")} failed: ${why || `exit ${out.code}`}`);
  }
};

export class IpLink {
  readonly #ip: IpRunner;
  readonly iface: string;

  constructor(iface: string, ip: IpRunner = runIp) {
    this.iface = iface;
    this.#ip = ip;
  }

  /** Address with the network's prefix length (the kernel adds the on-link route), MTU, up. */
  async configure(address: string, prefixBits: number, mtu: number): Promise<void> {
    const family = address.includes(":") ? "-6" : "-4";
    await this.#ip([family, "addr", "replace", `${address}/${prefixBits}`, "dev", this.iface]);
    await this.#ip(["link", "set", "dev", this.iface, "mtu", String(mtu), "up"]);
  }

  /** A subnet a peer serves, outside the network's own prefix, routed into the TUN. */
  addRoute(cidr: string): Promise<void> {
    return this.#ip([
      cidr.includes(":") ? "-6" : "-4",
      "route",
      "replace",
      cidr,
      "dev",
      this.iface,
    ]);
  }

  async removeRoute(cidr: string): Promise<void> {
    try {
      await this.#ip([cidr.includes(":") ? "-6" : "-4", "route", "del", cidr, "dev", this.iface]);
    } catch { /* already gone with the interface or never added */ }
  }
}

/**
 * Why this process cannot run the VPN, or null when it can: it needs root or CAP_NET_ADMIN
 * (Linux), read from the effective capability set in /proc/self/status.
 */
export function vpnUnavailable(readStatus = () => Deno.readTextFileSync("/proc/self/status")) {
  if (Deno.build.os !== "linux" && Deno.build.os !== "darwin") {
    return `the VPN is not available on ${Deno.build.os}`;
  }
  if (Deno.build.os === "darwin") return Deno.uid() === 0 ? null : "the VPN needs root on macOS";
  // Root usually has CAP_NET_ADMIN; where it does not (a locked-down container), opening the TUN
  // fails with EPERM and that is reported instead.
  if (Deno.uid() === 0) return null;
  let status: string;
  try {
    status = readStatus();
  } catch {
    return "cannot read /proc/self/status to check for CAP_NET_ADMIN";
  }
  const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  const CAP_NET_ADMIN = 12n;
  if (eff && (BigInt(`0x${eff}`) >> CAP_NET_ADMIN) & 1n) return null;
  return "the VPN needs root or CAP_NET_ADMIN (run the daemon as root, or as a service with " +
    "AmbientCapabilities=CAP_NET_ADMIN)";
}
