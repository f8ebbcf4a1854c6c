/** HOST:PORT for people and logs, with brackets around an IPv6 host. */
export function netAddrString(a: Deno.NetAddr): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}
