/** Words shared by the service modules: what runs, where, under which manager. */

export type ServiceKind = "daemon" | "relay";
export type ServiceScope = "system" | "user";
export type ServiceOs = "linux" | "darwin";
export type ServiceManager = "systemd" | "launchd";

/** The account a service runs as, from the password database. */
export interface ServiceUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** The relay's flags as the service passes them on (`den relay …`). */
export interface RelayFlags {
  /** HOST:PORT, always given explicitly in the unit. */
  listen: string;
  port: number;
  /** Absolute paths, or null for ws:// without TLS. */
  tlsCert: string | null;
  tlsKey: string | null;
  /** HOST:PORT or "off"; null keeps den relay's default. */
  metrics: string | null;
  /** HOST:PORT (UDP on PORT and PORT+1) or "off"; null keeps den relay's default. */
  reflector: string | null;
}

export function managerFor(os: ServiceOs): ServiceManager {
  return os === "darwin" ? "launchd" : "systemd";
}
