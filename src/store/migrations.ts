/**
 * The schema of den.db, as an append-only list of migrations: migration i takes the database from
 * `PRAGMA user_version` i to i+1. Never edit a released migration; add a new one.
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE teams (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     joined_at INTEGER NOT NULL,
     -- member | left | removed
     state TEXT NOT NULL DEFAULT 'member'
   );
   CREATE TABLE team_blocks (
     team TEXT NOT NULL,
     hash TEXT NOT NULL,
     bytes BLOB NOT NULL,
     received_at INTEGER NOT NULL,
     PRIMARY KEY (team, hash)
   ) WITHOUT ROWID;
   CREATE TABLE ops (
     team TEXT NOT NULL,
     env TEXT NOT NULL,
     author TEXT NOT NULL,
     seq INTEGER NOT NULL,
     hash TEXT NOT NULL,
     bytes BLOB NOT NULL,
     received_at INTEGER NOT NULL,
     PRIMARY KEY (team, env, author, seq)
   );
   CREATE TABLE invites (
     proposal TEXT PRIMARY KEY,
     team TEXT NOT NULL,
     seed BLOB NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE rejected (
     id INTEGER PRIMARY KEY,
     at INTEGER NOT NULL,
     team TEXT NOT NULL,
     what TEXT NOT NULL,
     hash TEXT,
     source TEXT NOT NULL,
     code TEXT NOT NULL,
     message TEXT NOT NULL
   );`,
];
