/**
 * What the strategies share: the snapshot result, progress, abortable sleep, the
 * switch to a self-contained DELETE-journal file, and cleanup of a snapshot's files.
 *
 * @module
 */

import { Database } from "../sqlite/database.ts";
import { SqliteError } from "../sqlite/error.ts";
import { ConfigError } from "../errors.ts";
import { removeIfExists } from "../fs.ts";
import type { SnapshotCheck } from "../config.ts";

/** Progress of a snapshot, reported after each online step. */
export interface SnapshotProgress {
  /** Pages copied so far in the current pass. */
  pagesCopied: number;
  /** Pages in the source. */
  totalPages: number;
  /** How often the copy started over because the source changed. */
  restarts: number;
}

/** What a strategy produced. */
export interface SnapshotResult {
  /** Pages in the snapshot. */
  pages: number;
  /** Restarts of the online copy (always 0 for vacuum and for pinned WAL copies). */
  restarts: number;
  /** The source's journal mode when the copy began (`wal`, `delete`, ...). */
  sourceJournalMode: string;
}

/** Options every strategy takes. */
export interface SnapshotOptions {
  /** Cancels the snapshot; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** How long to wait on a locked source, in ms. Default 5000. */
  busyTimeoutMs?: number;
}

/**
 * Makes a finished snapshot one self-contained file: `journal_mode=DELETE` (a copy of a
 * WAL database is itself marked WAL), and returns its page count. The switch rewrites and
 * syncs the file, so it runs off the JavaScript thread (a host app's event loop keeps going).
 *
 * @example
 * ```ts
 * const pages = await finalizeSnapshot(".sqlbk-app-1234.snapshot");
 * ```
 */
export async function finalizeSnapshot(path: string): Promise<number> {
  const db = new Database(path, { mode: "readwrite" });
  try {
    db.exec("PRAGMA synchronous=OFF"); // a temp file: the archive made from it is what gets fsynced
    const mode = String(Object.values((await db.queryAsync("PRAGMA journal_mode=DELETE"))[0])[0]);
    if (mode !== "delete") {
      throw new Error(`Cannot switch snapshot "${path}" to journal_mode=DELETE: SQLite kept "${mode}"`);
    }
    return Number(Object.values(db.query("PRAGMA page_count")[0])[0]);
  } finally {
    db.close();
  }
}

/**
 * Removes a snapshot and the journal files SQLite may have left beside it.
 *
 * @example
 * ```ts
 * await removeSnapshot(".sqlbk-app-1234.snapshot");
 * ```
 */
export async function removeSnapshot(path: string): Promise<void> {
  for (const suffix of ["", "-journal", "-wal", "-shm"]) {
    await removeIfExists(path + suffix).catch(() => {});
  }
}

/**
 * The source's journal mode, lowercase (`wal`, `delete`, `truncate`, `persist`, `memory`, `off`).
 *
 * @example
 * ```ts
 * journalMode(db); // "wal"
 * ```
 */
export function journalMode(db: Database): string {
  return String(Object.values(db.query("PRAGMA journal_mode")[0])[0]).toLowerCase();
}

/**
 * Raised when a source or snapshot must not become a backup: empty, not a SQLite
 * database, or failing its check. Nothing is published (exit 1).
 *
 * @example
 * ```ts
 * try {
 *   probeSource("empty.db");
 * } catch (err) {
 *   if (err instanceof SnapshotCheckError) console.error(err.message); // Source "empty.db" is empty ...
 * }
 * ```
 */
export class SnapshotCheckError extends Error {
  /** Always `"SnapshotCheckError"`. */
  override name = "SnapshotCheckError";
}

/**
 * Looks at a live source through SQLite only (never a file read of our own: closing any
 * other descriptor of the file would drop the locks this process's connections hold on
 * it; DESIGN.md rule 10). Throws {@link SnapshotCheckError} when it is empty (no pages)
 * or not a SQLite database, a ConfigError (exit 2) when SQLite cannot open it (not
 * readable for this user); returns its page count.
 *
 * @example
 * ```ts
 * const pages = probeSource("app.db");
 * ```
 */
export function probeSource(path: string, options: { busyTimeoutMs?: number } = {}): number {
  let db: Database | null = null;
  try {
    db = new Database(path, { mode: "readonly", busyTimeoutMs: options.busyTimeoutMs ?? 5000 });
    db.query("SELECT count(*) FROM sqlite_schema");
    const pages = Number(Object.values(db.query("PRAGMA page_count")[0])[0]);
    if (pages < 1) {
      throw new SnapshotCheckError(
        `Source "${path}" is empty (0 pages): refusing to publish an empty backup (is source_path the right file?)`,
      );
    }
    return pages;
  } catch (err) {
    if (err instanceof SqliteError && (err.codeName === "SQLITE_NOTADB" || err.codeName === "SQLITE_CORRUPT")) {
      throw new SnapshotCheckError(
        `Source "${path}" is not a readable SQLite database: ${err.sqliteMessage} (${err.codeName})`,
        { cause: err },
      );
    }
    if (err instanceof SqliteError && err.codeName === "SQLITE_CANTOPEN") {
      // The file exists (callers stat it first): this user may not read it, or, for a WAL
      // database, may not open the -wal/-shm files beside it.
      throw new ConfigError(
        `Invalid "source_path" "${path}": cannot read it (SQLite: ${err.sqliteMessage}); make it readable for ` +
          `this user (for a WAL database also its -wal and -shm files), or run as the database's owner`,
        { cause: err },
      );
    }
    throw err;
  } finally {
    db?.close();
  }
}

/** What {@link checkSnapshot} ran. */
export interface SnapshotCheckResult {
  /** The level that ran. */
  check: SnapshotCheck;
  /** How long it took, in ms. */
  durationMs: number;
}

/**
 * Checks a finished snapshot before it is published, read-only and off the JavaScript
 * thread: `quick` runs `PRAGMA quick_check`, `full` runs `PRAGMA integrity_check`; both
 * pass only on exactly one row, `ok`. A snapshot with no pages always fails. Throws
 * {@link SnapshotCheckError} naming the check and its first findings.
 *
 * @example
 * ```ts
 * const { durationMs } = await checkSnapshot(".sqlbk-app-1234.snapshot", "quick");
 * ```
 */
export async function checkSnapshot(path: string, level: SnapshotCheck): Promise<SnapshotCheckResult> {
  const started = performance.now();
  const db = new Database(path, { mode: "readonly" });
  try {
    const pages = Number(Object.values(db.query("PRAGMA page_count")[0])[0]);
    if (pages < 1) throw new SnapshotCheckError(`The snapshot is empty (0 pages): refusing to publish it`);
    if (level !== "none") {
      const pragma = level === "full" ? "integrity_check" : "quick_check";
      let messages: string[];
      try {
        const rows = await db.queryAsync(`PRAGMA ${pragma}(10)`);
        messages = rows.map((row) => String(Object.values(row)[0]));
      } catch (err) {
        if (!(err instanceof SqliteError)) throw err;
        messages = [err.message];
      }
      if (messages.length !== 1 || messages[0] !== "ok") {
        throw new SnapshotCheckError(
          `The snapshot failed ${pragma}, so the source database is damaged: ${
            messages.map((m) => JSON.stringify(m)).join(", ")
          } (nothing was published; run "PRAGMA integrity_check" on the source)`,
        );
      }
    }
    return { check: level, durationMs: Math.round(performance.now() - started) };
  } finally {
    db.close();
  }
}
