/**
 * Opening the app's own database (`--dbpath`) for the job queue and `app_config`: a
 * missing file, a directory, or a file that is not a SQLite database is a one-line
 * {@link ConfigError} naming the path.
 *
 * @module
 */

import { ConfigError } from "./errors.ts";
import { Database, type OpenMode } from "./sqlite/database.ts";
import { SqliteError } from "./sqlite/error.ts";
import { SQLITE_CANTOPEN, SQLITE_NOTADB } from "./sqlite/constants.ts";

/**
 * Opens the app's database at `path`. With mode `create` a missing file is created;
 * otherwise it must exist. The header is read at once, so a non-database fails here.
 *
 * @param path the app's database (`--dbpath`)
 * @param options `mode` (default `readwrite`), `busyTimeoutMs` (default 5000)
 *
 * @example
 * ```ts
 * const db = openAppDatabase("app.db", { mode: "readonly" });
 * try { console.log(db.query("SELECT count(*) AS n FROM job_queue")); } finally { db.close(); }
 * ```
 */
export function openAppDatabase(path: string, options: { mode?: OpenMode; busyTimeoutMs?: number } = {}): Database {
  const mode = options.mode ?? "readwrite";
  if (mode !== "create") {
    try {
      if (!Deno.statSync(path).isFile) throw new ConfigError(`Invalid --dbpath "${path}": not a regular file`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new ConfigError(`Invalid --dbpath "${path}": no such file (give the app's SQLite database)`, {
          cause: err,
        });
      }
      throw err;
    }
  }
  let db: Database;
  try {
    db = new Database(path, { mode, busyTimeoutMs: options.busyTimeoutMs });
  } catch (err) {
    if (err instanceof SqliteError && err.code === SQLITE_CANTOPEN) {
      throw new ConfigError(`Cannot open database "${path}": ${err.sqliteMessage}`, { cause: err });
    }
    throw err;
  }
  try {
    db.query("SELECT count(*) FROM sqlite_schema");
  } catch (err) {
    db.close();
    if (err instanceof SqliteError && err.code === SQLITE_NOTADB) {
      throw new ConfigError(`Invalid --dbpath "${path}": not a SQLite database`, { cause: err });
    }
    throw err;
  }
  return db;
}
