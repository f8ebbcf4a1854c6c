/**
 * The systemd unit for the daemon or the relay, as text. Pure: every decision about paths,
 * users and credentials is made by the caller (service_plan.ts); this file knows which
 * directives each kind and scope gets, and how to write values safely (systemd_quote.ts).
 * docs/SERVICE.md explains every directive.
 */
import {
  credentialValue,
  environmentValue,
  execWord,
  pathList,
  rejectControlChars,
} from "./systemd_quote.ts";
import type { ServiceKind, ServiceScope } from "./service_types.ts";

/** An ExecStart argument: literal text, or the path of a credential systemd hands over. */
export type ExecArg = string | { credential: string };

export interface SystemdUnitSpec {
  kind: ServiceKind;
  scope: ServiceScope;
  description: string;
  /** Program and arguments. */
  exec: ExecArg[];
  environment: [string, string][];
  /** User= (system scope); null runs as root, or as the user manager's user. */
  user: string | null;
  /** LoadCredential=ID:PATH; referenced in `exec` as { credential: ID }. */
  credentials: { id: string; path: string }[];
  /** ReadWritePaths= that must exist, and ones that may be missing (`-` prefix). */
  writablePaths: string[];
  optionalWritablePaths: string[];
  /** The socket is in $XDG_RUNTIME_DIR/den (user scope): systemd creates that directory 0700. */
  runtimeDirectory: boolean;
  /** UnsetEnvironment=XDG_RUNTIME_DIR: the socket goes to the data dir. */
  unsetRuntimeDir: boolean;
  /** The lowest port the relay binds (TCP listen, UDP reflector): below 1024 it needs CAP_NET_BIND_SERVICE. */
  listenPort: number | null;
  /** DynamicUser=yes (the relay in system scope, compiled binary only). */
  dynamicUser: boolean;
  /** PrivateTmp=yes; false when den's files are under /tmp, which it would hide. */
  privateTmp: boolean;
  /** ProtectHome=; null leaves home directories as they are (the daemon's files live there). */
  protectHome: "yes" | "read-only" | null;
  /** Lines for the comment at the top of the file. */
  comments: string[];
}

const CREDENTIALS_REF = "${CREDENTIALS_DIRECTORY}";

function execStart(args: readonly ExecArg[], credentials: SystemdUnitSpec["credentials"]): string {
  return args.map((a, i) => {
    if (typeof a === "string") return execWord(a, i === 0 ? "the program" : "the argument");
    if (!credentials.some((c) => c.id === a.credential)) {
      throw new Error(`ExecStart refers to credential ${a.credential}, which is not loaded`);
    }
    return `${CREDENTIALS_REF}/${a.credential}`;
  }).join(" ");
}

/** Capabilities: [ambient, bounding set]; null leaves the setting out. */
function capabilities(spec: SystemdUnitSpec): [string | null, string | null] {
  if (spec.scope === "user") return [null, null];
  if (spec.kind === "daemon") return ["CAP_NET_ADMIN", "CAP_NET_ADMIN CAP_NET_BIND_SERVICE"];
  const lowPort = spec.listenPort !== null && spec.listenPort < 1024;
  return lowPort ? ["CAP_NET_BIND_SERVICE", "CAP_NET_BIND_SERVICE"] : [null, ""];
}

function line(key: string, value: string | null | undefined): string[] {
  return value === null || value === undefined ? [] : [`${key}=${value}`];
}

export function systemdUnit(spec: SystemdUnitSpec): string {
  const [ambient, bounding] = capabilities(spec);
  const relay = spec.kind === "relay";
  const system = spec.scope === "system";
  const families = relay ? "AF_UNIX AF_INET AF_INET6" : "AF_UNIX AF_INET AF_INET6 AF_NETLINK";
  const writable = spec.writablePaths.length + spec.optionalWritablePaths.length > 0
    ? pathList(spec.writablePaths, spec.optionalWritablePaths)
    : null;
  const out = [
    ...spec.comments.map((c) => `# ${rejectControlChars(c, "the comment")}`.trimEnd()),
    ...(spec.comments.length ? [""] : []),
    "[Unit]",
    `Description=${rejectControlChars(spec.description, "the description")}`,
    ...(system ? ["After=network-online.target", "Wants=network-online.target"] : []),
    "",
    "[Service]",
    "Type=simple",
    ...line("User", spec.user === null ? null : rejectControlChars(spec.user, "the user")),
    ...(spec.dynamicUser ? ["DynamicUser=yes"] : []),
    `ExecStart=${execStart(spec.exec, spec.credentials)}`,
    ...spec.environment.map(([k, v]) => `Environment=${environmentValue(k, v)}`),
    ...(spec.unsetRuntimeDir ? ["UnsetEnvironment=XDG_RUNTIME_DIR"] : []),
    ...spec.credentials.map((c) => `LoadCredential=${credentialValue(c.id, c.path)}`),
    ...(spec.runtimeDirectory ? ["RuntimeDirectory=den", "RuntimeDirectoryMode=0700"] : []),
    "Restart=on-failure",
    "RestartSec=2",
    "TimeoutStopSec=15",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    ...line("ReadWritePaths", writable),
    ...line("ProtectHome", spec.protectHome),
    ...(spec.privateTmp ? ["PrivateTmp=yes"] : []),
    ...(relay ? ["PrivateDevices=yes"] : []),
    "ProtectKernelModules=yes",
    "ProtectKernelTunables=yes",
    "ProtectControlGroups=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "RestrictRealtime=yes",
    `RestrictAddressFamilies=${families}`,
    ...line("AmbientCapabilities", ambient),
    ...line("CapabilityBoundingSet", bounding),
    "",
    "[Install]",
    `WantedBy=${system ? "multi-user.target" : "default.target"}`,
  ];
  return out.join("\n") + "\n";
}
