/**
 * What the strategies share: the snapshot result, progress, abortable sleep, the
 * switch to a self-contained DELETE-journal file, and cleanup of a snapshot's files.
 *
 * @module
 */

import { Database } from "../sqlite/database.ts";
import { removeIfExists } from "../fs.ts";

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
