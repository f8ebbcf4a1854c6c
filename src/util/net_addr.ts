/** HOST:PORT for dialling, people and logs, with brackets around an IPv6 host. */
export function hostPortString(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A socket address as HOST:PORT. */
export function netAddrString(a: Deno.NetAddr): string {
  return hostPortString(a.hostname, a.port);
}
