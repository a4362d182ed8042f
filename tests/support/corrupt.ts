/**
 * Test support: databases damaged in every way we can make, each a real file built with
 * the real `sqlite3` tool and then broken, for the integrity-check equivalence tests.
 *
 * @module
 */

import { join } from "node:path";
import { sqlite3 } from "./db.ts";

/** The kinds of damage {@link makeCorruptDatabase} makes. */
export const CORRUPTIONS = [
  "zeroed-page",
  "broken-index",
  "freelist-count",
  "freelist-trunk",
  "page-used-twice",
  "truncated",
  "bad-header",
  "not-null",
  "check",
  "unique",
] as const;

/** One kind of damage. */
export type Corruption = typeof CORRUPTIONS[number];

const _USERS =
  "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, age INTEGER CHECK (age >= 0))";

/**
 * A sound database of three tables (text columns, NOT NULL, CHECK and UNIQUE
 * constraints, four indexes) over a few hundred 4 KiB pages, with free pages from a
 * dropped table.
 */
export async function makeSoundDatabase(path: string, rows = 3000): Promise<void> {
  await sqlite3(
    path,
    `PRAGMA page_size=4096; PRAGMA journal_mode=DELETE;
${_USERS};
CREATE INDEX users_name ON users(name);
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, title TEXT, body TEXT);
CREATE INDEX posts_user ON posts(user_id);
CREATE INDEX posts_title ON posts(title);
CREATE TABLE tags (post_id INTEGER, tag TEXT, PRIMARY KEY (post_id, tag)) WITHOUT ROWID;
CREATE TABLE scratch (x BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows})
INSERT INTO users (email, name, age) SELECT 'user' || x || '@example.com', CASE WHEN x % 7 = 0 THEN NULL ELSE 'name ' || (x * 7919 % ${rows}) END, x % 90 FROM c;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows})
INSERT INTO posts (user_id, title, body) SELECT 1 + x % ${rows}, 'title ' || (x * 31 % 1000), hex(randomblob(60)) FROM c;
INSERT INTO tags SELECT id, 'tag' || (id % 13) FROM posts;
INSERT INTO scratch SELECT randomblob(3000) FROM posts LIMIT 200;
DROP TABLE scratch;`,
  );
}

async function _patch(path: string, offset: number, bytes: Uint8Array): Promise<void> {
  const file = await Deno.open(path, { read: true, write: true });
  try {
    await file.seek(offset, Deno.SeekMode.Start);
    for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
  } finally {
    file.close();
  }
}

function _u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** Rewrites the schema entry `name` (its SQL, or its root page) without touching the data. */
async function _rewriteSchema(path: string, name: string, set: string): Promise<void> {
  await sqlite3(path, `PRAGMA writable_schema = ON; UPDATE sqlite_schema SET ${set} WHERE name = '${name}';`);
}

async function _num(path: string, sql: string): Promise<number> {
  return Number(await sqlite3(path, sql));
}

/** Makes `dir/<kind>.db`: a sound database, then the damage; returns its path. */
export async function makeCorruptDatabase(dir: string, kind: Corruption): Promise<string> {
  const path = join(dir, `${kind}.db`);
  await makeSoundDatabase(path);
  const page = 4096;
  switch (kind) {
    case "zeroed-page": {
      const n = await _num(
        path,
        "SELECT pageno FROM dbstat WHERE name = 'posts' AND pagetype = 'leaf' LIMIT 1 OFFSET 5;",
      );
      await _patch(path, (n - 1) * page, new Uint8Array(page));
      break;
    }
    case "broken-index": {
      // The index's b-tree holds names; the schema now says it indexes emails: every
      // entry is missing, which only the index cross-check sees.
      await _rewriteSchema(path, "users_name", "sql = 'CREATE INDEX users_name ON users(email)'");
      break;
    }
    case "freelist-count": {
      const free = await _num(path, "PRAGMA freelist_count;");
      await _patch(path, 36, _u32(free + 5));
      break;
    }
    case "freelist-trunk": {
      // The first freelist trunk page points past the end of the file.
      await _patch(path, 32, _u32(await _num(path, "PRAGMA page_count;") + 50));
      break;
    }
    case "page-used-twice": {
      // An index's root becomes the root of another index: its pages are referenced twice.
      await _rewriteSchema(
        path,
        "posts_user",
        "rootpage = (SELECT rootpage FROM sqlite_schema WHERE name = 'posts_title')",
      );
      break;
    }
    case "truncated": {
      const size = (await Deno.stat(path)).size;
      await Deno.truncate(path, Math.floor(size / page / 2) * page);
      break;
    }
    case "bad-header": {
      await _patch(path, 0, new TextEncoder().encode("SQLite formaT 3\0"));
      break;
    }
    case "not-null": {
      // Some names are NULL; the schema now says NOT NULL.
      await _rewriteSchema(path, "users", `sql = '${_USERS.replace("name TEXT", "name TEXT NOT NULL")}'`);
      break;
    }
    case "check": {
      await _rewriteSchema(path, "users", `sql = '${_USERS.replace("age >= 0", "age >= 50")}'`);
      break;
    }
    case "unique": {
      // The index on title becomes UNIQUE while titles repeat.
      await _rewriteSchema(path, "posts_title", "sql = 'CREATE UNIQUE INDEX posts_title ON posts(title)'");
      break;
    }
  }
  return path;
}
