/** A small Prometheus text-format registry: counters and gauges with labels, owned per daemon. */

type Labels = Record<string, string>;

interface Family {
  type: "counter" | "gauge";
  help: string;
  values: Map<string, { labels: Labels; value: number }>;
  collect?: () => number | [Labels, number][];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function labelKey(labels: Labels): string {
  return Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(",");
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

export class MetricsRegistry {
  readonly #families = new Map<string, Family>();

  #family(name: string, type: Family["type"], help: string): Family {
    if (!NAME.test(name)) throw new Error(`invalid metric name ${name}`);
    let f = this.#families.get(name);
    if (!f) {
      f = { type, help, values: new Map() };
      this.#families.set(name, f);
    } else if (f.type !== type) {
      throw new Error(`metric ${name} registered as ${f.type}, used as ${type}`);
    }
    return f;
  }

  /** Declares a counter so it is exported (at 0) before the first increment. */
  counter(name: string, help: string): void {
    this.#family(name, "counter", help);
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const f = this.#families.get(name);
    if (!f) throw new Error(`metric ${name} not declared`);
    const key = labelKey(labels);
    const cur = f.values.get(key);
    if (cur) cur.value += by;
    else f.values.set(key, { labels, value: by });
  }

  /** A gauge read when metrics are scraped: one value, or one per label set. */
  gauge(name: string, help: string, collect: () => number | [Labels, number][]): void {
    this.#family(name, "gauge", help).collect = collect;
  }

  render(): string {
    const out: string[] = [];
    for (const [name, f] of this.#families) {
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      const collected = f.collect?.();
      const rows = typeof collected === "number"
        ? [{ labels: {}, value: collected }]
        : collected
        ? collected.map(([labels, value]) => ({ labels, value }))
        : [...f.values.values()];
      if (rows.length === 0) out.push(`${name} 0`);
      for (const { labels, value } of rows) {
        const ls = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",");
        out.push(ls ? `${name}{${ls}} ${value}` : `${name} ${value}`);
      }
    }
    return out.join("\n") + "\n";
  }
}
