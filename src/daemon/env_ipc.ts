/** Control-socket methods for `den env …` (docs/IPC.md). Values cross the socket, never the net. */
import { DenError, Exit } from "../errors.ts";
import { intParam, optionalString, type Params, stringList, stringParam } from "../ipc/params.ts";
import type { SecretsService } from "../secrets/service.ts";
import type { TeamChain } from "../team/chain.ts";
import type { TeamService } from "../team/service.ts";
import { MAX_VALUE_BYTES } from "../secrets/op.ts";

export interface EnvIpcContext {
  teams: TeamService;
  secrets: SecretsService;
}

const MAX_PAIRS = 10_000;

export function envHandlers(c: EnvIpcContext): [string, (p: Params) => unknown][] {
  const where = (p: Params): { chain: TeamChain; env: string } => ({
    chain: c.teams.resolve(optionalString(p, "team", 128)),
    env: optionalString(p, "env", 64) ?? "default",
  });
  const memberFp = (chain: TeamChain, who: string): string => {
    const hits = [...chain.state().members.values()].filter((m) =>
      m.name === who || m.fingerprint === who
    );
    if (hits.length !== 1) {
      throw new DenError("no_such_member", `${who} is not (exactly one) member of the team`, {
        exit: Exit.usage,
        hint: "den team members lists names and fingerprints",
      });
    }
    return hits[0].fingerprint;
  };
  return [
    ["env.set", async (p) => {
      const { chain, env } = where(p);
      const pairs = parsePairs(p.pairs);
      const ops = await c.secrets.set(chain, env, pairs);
      return { team: chain.state().name, env, set: pairs.length, ops };
    }],
    ["env.get", async (p) => {
      const { chain, env } = where(p);
      return { value: await c.secrets.get(chain, env, stringParam(p, "key", 256)) };
    }],
    ["env.list", (p) => {
      const { chain, env } = where(p);
      return c.secrets.list(chain, env, p.show === true);
    }],
    ["env.rm", async (p) => {
      const { chain, env } = where(p);
      const keys = stringList(p, "keys", MAX_PAIRS, 256);
      await c.secrets.remove(chain, env, keys);
      return { removed: keys.length };
    }],
    ["env.history", (p) => {
      const { chain, env } = where(p);
      return c.secrets.history(chain, env, optionalString(p, "key", 256));
    }],
    ["env.rollback", async (p) => {
      const { chain, env } = where(p);
      const key = stringParam(p, "key", 256);
      const version = await c.secrets.rollback(
        chain,
        env,
        key,
        intParam(p, "version", 1, 2 ** 31),
      );
      return { key, version };
    }],
    ["env.values", (p) => {
      const { chain, env } = where(p);
      return c.secrets.values(chain, env);
    }],
    ["env.grant", async (p) => {
      const { chain, env } = where(p);
      c.teams.requireAdmin(chain);
      const member = memberFp(chain, stringParam(p, "member", 128));
      await c.teams.append(chain, { type: "grant", member, env });
      return { granted: env, member, reencrypted: await c.secrets.rewrap(chain, env) };
    }],
    ["env.revoke", async (p) => {
      const { chain, env } = where(p);
      c.teams.requireAdmin(chain);
      const member = memberFp(chain, stringParam(p, "member", 128));
      await c.teams.append(chain, { type: "revoke", member, env });
      return { revoked: env, member, reencrypted: await c.secrets.rewrap(chain, env) };
    }],
  ];
}

function parsePairs(v: unknown): [string, string][] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_PAIRS) {
    throw new DenError("bad_request", `'pairs' must be 1 to ${MAX_PAIRS} [key, value] pairs`);
  }
  const enc = new TextEncoder();
  return v.map((pair) => {
    if (
      !Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" ||
      typeof pair[1] !== "string"
    ) throw new DenError("bad_request", "each pair must be [key, value] strings");
    if (enc.encode(pair[1]).length > MAX_VALUE_BYTES) {
      throw new DenError(
        "value_too_large",
        `the value of ${pair[0]} is over ${MAX_VALUE_BYTES} bytes`,
        {
          exit: Exit.usage,
          hint: "store large files elsewhere and keep a reference or key here",
        },
      );
    }
    return [pair[0], pair[1]];
  });
}
