/**
 * den.db: team chains, ops chains, pending invites and a report of rejected data, in SQLite
 * (node:sqlite) with WAL. Every write that must be atomic is one transaction, so a crash leaves
 * either all of a batch of blocks or ops or none of it. Secret values exist here only as the
 * ciphertext inside op records.
 */
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { DenError } from "../errors.ts";
import { MIGRATIONS } from "./migrations.ts";

export type TeamMembership = "member" | "left" | "removed";

export interface TeamRow {
  id: string;
  name: string;
  joined_at: number;
  state: TeamMembership;
}

export interface StoredOp {
  env: string;
  author: string;
  seq: number;
  hash: string;
  bytes: Uint8Array;
}

export interface RejectedRow {
  at: number;
  team: string;
  what: "block" | "op";
  hash: string | null;
  source: string;
  code: string;
  message: string;
}

/** Keep this many rejection reports; older ones are dropped. */
const MAX_REJECTED_ROWS = 1000;

export class Store {
  readonly #db: DatabaseSync;

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Opens (creating if needed) and migrates; a database from a newer den is refused. */
  static open(path: string): Store {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path);
      db.exec("PRAGMA journal_mode = WAL");
      // FULL: a set the CLI saw succeed survives a power cut, not only a killed process.
      db.exec("PRAGMA synchronous = FULL");
      db.exec("PRAGMA busy_timeout = 5000");
    } catch (err) {
      throw new DenError("db_open", `cannot open ${path}: ${(err as Error).message}`, {
        hint: "check the file's permissions and free disk space",
      });
    }
    const store = new Store(db);
    try {
      store.#migrate(path);
    } catch (err) {
      db.close();
      throw err;
    }
    return store;
  }

  #migrate(path: string): void {
    const row = this.#db.prepare("PRAGMA user_version").get() as { user_version: number };
    const current = row.user_version;
    if (current > MIGRATIONS.length) {
      throw new DenError(
        "db_too_new",
        `${path} has schema version ${current}; this den knows up to ${MIGRATIONS.length}`,
        { hint: "upgrade den (den version shows which one runs)" },
      );
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.tx(() => {
        this.#db.exec(MIGRATIONS[v]);
        this.#db.exec(`PRAGMA user_version = ${v + 1}`);
      });
    }
  }

  get schemaVersion(): number {
    return (this.#db.prepare("PRAGMA user_version").get() as { user_version: number })
      .user_version;
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  /** Runs `fn` in one transaction: all of its writes land, or none. Nests (as savepoints). */
  tx<T>(fn: () => T): T {
    if (this.#db.isTransaction) {
      this.#db.exec("SAVEPOINT nested");
      try {
        const out = fn();
        this.#db.exec("RELEASE nested");
        return out;
      } catch (err) {
        this.#db.exec("ROLLBACK TO nested");
        this.#db.exec("RELEASE nested");
        throw err;
      }
    }
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      this.#db.exec("COMMIT");
      return out;
    } catch (err) {
      this.#db.exec("ROLLBACK");
      throw err;
    }
  }

  integrityCheck(): string {
    return (this.#db.prepare("PRAGMA integrity_check").get() as { integrity_check: string })
      .integrity_check;
  }

  // --- teams --------------------------------------------------------------------------------

  teams(): TeamRow[] {
    return this.#all<TeamRow>("SELECT id, name, joined_at, state FROM teams ORDER BY name, id");
  }

  putTeam(id: string, name: string, joinedAt: number): void {
    this.#run(
      "INSERT INTO teams (id, name, joined_at) VALUES (?, ?, ?) " +
        "ON CONFLICT (id) DO UPDATE SET name = excluded.name, state = 'member'",
      id,
      name,
      joinedAt,
    );
  }

  setTeamState(id: string, state: TeamMembership): void {
    this.#run("UPDATE teams SET state = ? WHERE id = ?", state, id);
  }

  // --- team blocks --------------------------------------------------------------------------

  blocks(team: string): { hash: string; bytes: Uint8Array }[] {
    return this.#all("SELECT hash, bytes FROM team_blocks WHERE team = ?", team);
  }

  /** Inserts a batch atomically; blocks already stored are skipped. */
  putBlocks(team: string, blocks: { hash: string; bytes: Uint8Array }[], at: number): void {
    if (blocks.length === 0) return;
    const stmt = this.#db.prepare(
      "INSERT OR IGNORE INTO team_blocks (team, hash, bytes, received_at) VALUES (?, ?, ?, ?)",
    );
    this.tx(() => {
      for (const b of blocks) stmt.run(team, b.hash, b.bytes, at);
    });
  }

  deleteBlock(team: string, hash: string): void {
    this.#run("DELETE FROM team_blocks WHERE team = ? AND hash = ?", team, hash);
  }

  // --- ops ----------------------------------------------------------------------------------

  ops(team: string): StoredOp[] {
    return this.#all(
      "SELECT env, author, seq, hash, bytes FROM ops WHERE team = ? ORDER BY env, author, seq",
      team,
    );
  }

  /** Inserts a batch atomically; an op already stored at its place is skipped. */
  putOps(team: string, ops: StoredOp[], at: number): void {
    if (ops.length === 0) return;
    const stmt = this.#db.prepare(
      "INSERT OR IGNORE INTO ops (team, env, author, seq, hash, bytes, received_at) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.tx(() => {
      for (const o of ops) stmt.run(team, o.env, o.author, o.seq, o.hash, o.bytes, at);
    });
  }

  /** Removes an op and every later op of its chain (they link to it). */
  deleteOpsFrom(team: string, env: string, author: string, seq: number): void {
    this.#run(
      "DELETE FROM ops WHERE team = ? AND env = ? AND author = ? AND seq >= ?",
      team,
      env,
      author,
      seq,
    );
  }

  // --- invites ------------------------------------------------------------------------------

  putInvite(proposal: string, team: string, seed: Uint8Array, at: number): void {
    this.#run(
      "INSERT OR REPLACE INTO invites (proposal, team, seed, created_at) VALUES (?, ?, ?, ?)",
      proposal,
      team,
      seed,
      at,
    );
  }

  invite(proposal: string): { team: string; seed: Uint8Array } | null {
    const rows = this.#all<{ team: string; seed: Uint8Array }>(
      "SELECT team, seed FROM invites WHERE proposal = ?",
      proposal,
    );
    return rows[0] ?? null;
  }

  deleteInvite(proposal: string): void {
    this.#run("DELETE FROM invites WHERE proposal = ?", proposal);
  }

  // --- rejection reports --------------------------------------------------------------------

  reportRejected(r: RejectedRow): void {
    this.tx(() => {
      this.#run(
        "INSERT INTO rejected (at, team, what, hash, source, code, message) " +
          "VALUES (?, ?, ?, ?, ?, ?, ?)",
        r.at,
        r.team,
        r.what,
        r.hash,
        r.source,
        r.code,
        r.message,
      );
      this.#run(
        "DELETE FROM rejected WHERE id <= (SELECT MAX(id) FROM rejected) - ?",
        MAX_REJECTED_ROWS,
      );
    });
  }

  rejected(team?: string): RejectedRow[] {
    const cols = "at, team, what, hash, source, code, message";
    return team === undefined
      ? this.#all(`SELECT ${cols} FROM rejected ORDER BY id`)
      : this.#all(`SELECT ${cols} FROM rejected WHERE team = ? ORDER BY id`, team);
  }

  #run(sql: string, ...params: SQLInputValue[]): void {
    this.#db.prepare(sql).run(...params);
  }

  #all<T>(sql: string, ...params: SQLInputValue[]): T[] {
    return this.#db.prepare(sql).all(...params) as T[];
  }
}
