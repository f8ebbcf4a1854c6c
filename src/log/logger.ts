/** Structured logs: `[RFC3339 UTC] LEVEL [component] message`, or one JSON object per line. */

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export const LOG_FORMATS = ["text", "json"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogSink = (line: string) => void;

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  sink?: LogSink;
  now?: () => Date;
}

const encoder = new TextEncoder();

function stderrSink(line: string): void {
  // Logging must never take the daemon down (e.g. stderr closed after the terminal went away).
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch { /* nowhere left to report it */ }
}

export class Logger {
  readonly #level: LogLevel;
  readonly #format: LogFormat;
  readonly #sink: LogSink;
  readonly #now: () => Date;
  readonly #component: string;

  constructor(component: string, opts: LoggerOptions = {}) {
    this.#component = component;
    this.#level = opts.level ?? "info";
    this.#format = opts.format ?? "text";
    this.#sink = opts.sink ?? stderrSink;
    this.#now = opts.now ?? (() => new Date());
  }

  /** A logger for a sub-component that shares level, format and sink. */
  child(component: string): Logger {
    return new Logger(component, {
      level: this.#level,
      format: this.#format,
      sink: this.#sink,
      now: this.#now,
    });
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.#log("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.#log("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.#log("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.#log("error", msg, fields);
  }

  #log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (RANK[level] < RANK[this.#level]) return;
    const ts = this.#now().toISOString().replace(/\.\d{3}Z$/, "Z");
    if (this.#format === "json") {
      this.#sink(JSON.stringify({ ts, level, component: this.#component, msg, ...fields }));
      return;
    }
    const extra = fields
      ? " " + Object.entries(fields).map(([k, v]) => `${k}=${formatValue(v)}`).join(" ")
      : "";
    this.#sink(`[${ts}] ${level.toUpperCase()} [${this.#component}] ${msg}${extra}`);
  }
}

function formatValue(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return /[\s"=]/.test(s) ? JSON.stringify(s) : s;
}
