/**
 * The launchd property list for the daemon or the relay, as XML text. Pure: the caller
 * (service_plan.ts) decides the program, environment, user and log file.
 */
import { rejectControlChars } from "./systemd_quote.ts";

export interface LaunchdPlistSpec {
  label: string;
  programArguments: string[];
  environment: [string, string][];
  /** UserName (system scope, when not root); null runs as root or as the logged-in user. */
  userName: string | null;
  /** stdout and stderr (the log) go here. */
  logPath: string;
}

const XML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

/** Text for an XML element; control characters (not allowed in XML 1.0) are refused. */
export function xmlEscape(s: string, what = "the value"): string {
  return rejectControlChars(s, what).replace(/[&<>"']/g, (c) => XML_ESCAPES[c]);
}

function str(s: string, what: string): string {
  return `<string>${xmlEscape(s, what)}</string>`;
}

export function launchdPlist(spec: LaunchdPlistSpec): string {
  const env = spec.environment.map(([k, v]) =>
    `    <key>${xmlEscape(k, "the variable name")}</key>\n    ${str(v, `the value of ${k}`)}`
  );
  const lines = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" ` +
    `"http://www.apple.com/DTDs/PropertyList-1.0.dtd">`,
    `<!-- written by "den service install" -->`,
    `<plist version="1.0">`,
    `<dict>`,
    `  <key>Label</key>`,
    `  ${str(spec.label, "the label")}`,
    `  <key>ProgramArguments</key>`,
    `  <array>`,
    ...spec.programArguments.map((a) => `    ${str(a, "the argument")}`),
    `  </array>`,
    ...(env.length ? [`  <key>EnvironmentVariables</key>`, `  <dict>`, ...env, `  </dict>`] : []),
    ...(spec.userName === null
      ? []
      : [`  <key>UserName</key>`, `  ${str(spec.userName, "the user name")}`]),
    `  <key>RunAtLoad</key>`,
    `  <true/>`,
    `  <key>KeepAlive</key>`,
    `  <dict>`,
    `    <key>SuccessfulExit</key>`,
    `    <false/>`,
    `  </dict>`,
    `  <key>ThrottleInterval</key>`,
    `  <integer>2</integer>`,
    `  <key>ExitTimeOut</key>`,
    `  <integer>15</integer>`,
    `  <key>StandardOutPath</key>`,
    `  ${str(spec.logPath, "the log path")}`,
    `  <key>StandardErrorPath</key>`,
    `  ${str(spec.logPath, "the log path")}`,
    `</dict>`,
    `</plist>`,
  ];
  return lines.join("\n") + "\n";
}
