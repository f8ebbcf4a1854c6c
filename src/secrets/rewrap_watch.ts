/**
 * Keeps values readable by exactly the current readers when membership changes. The node whose
 * own block changed the reader set (an admin: admins read every env) re-encrypts at once; a
 * removal re-encrypts every env it can read. Other readers step in only if values are still not
 * covered after a delay staggered by fingerprint, so one node usually does the work.
 */
import type { Logger } from "../log/logger.ts";
import type { Block } from "../team/block.ts";
import type { TeamService } from "../team/service.ts";
import { readersOf } from "../team/state.ts";
import type { SecretsService } from "./service.ts";

const FALLBACK_DELAY_MS = 3000;
const FALLBACK_STEP_MS = 1500;

export class RewrapWatch {
  readonly #former = new Map<string, number>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #stopped = false;

  constructor(
    readonly teams: TeamService,
    readonly secrets: SecretsService,
    readonly log: Logger,
  ) {
    for (const c of teams.chains()) this.#former.set(c.id, removedCount(c.state()));
    teams.onChange((team, added, source) => this.#onChange(team, added, source));
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
  }

  #onChange(team: string, _added: Block[], source: string | null): void {
    const chain = this.teams.chain(team);
    if (!chain || this.#stopped) return;
    const state = chain.state();
    const removed = removedCount(state);
    const newlyRemoved = removed > (this.#former.get(team) ?? 0);
    this.#former.set(team, removed);
    if (!state.members.has(this.teams.fingerprint)) return;
    if (source === null) {
      this.#run(team, newlyRemoved);
      return;
    }
    const readers = readersOf(state, "default").map((m) => m.fingerprint);
    const rank = Math.max(0, readers.indexOf(this.teams.fingerprint));
    const t = setTimeout(() => {
      this.#timers.delete(t);
      this.#run(team, false);
    }, FALLBACK_DELAY_MS + rank * FALLBACK_STEP_MS);
    this.#timers.add(t);
  }

  async #run(team: string, all: boolean): Promise<void> {
    const chain = this.teams.chain(team);
    if (!chain || this.#stopped) return;
    for (const env of this.secrets.envs(team)) {
      try {
        if (!all && this.secrets.uncovered(chain, env) === 0) continue;
        const n = await this.secrets.rewrap(chain, env);
        if (n > 0) {
          this.log.info("values re-encrypted for the current readers", {
            team: chain.state().name,
            env,
            values: n,
          });
        }
      } catch (err) {
        this.log.warn("re-encryption failed", { team, env, error: String(err) });
      }
    }
  }
}

function removedCount(s: { former: Map<string, { reason: string }> }): number {
  let n = 0;
  for (const f of s.former.values()) if (f.reason === "removed") n++;
  return n;
}
