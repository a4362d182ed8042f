/**
 * The `online` strategy: SQLite's Online Backup API, `pages_per_step` pages a step with
 * `sleep_interval` between steps, off the JavaScript thread.
 *
 * In WAL mode a read transaction is held on the source for the whole copy, so every step
 * reads one snapshot: no restarts, and writers are never blocked (the WAL grows until the
 * copy ends). In rollback-journal mode that lock would block writers, so the copy steps
 * unpinned, counts restarts, and gives up after `maxDurationMs`.
 *
 * @module
 */

import { Database } from "../sqlite/database.ts";
import { Backup } from "../sqlite/backup.ts";
import { SQLITE_BUSY, SQLITE_DONE, SQLITE_LOCKED, SQLITE_OK } from "../sqlite/constants.ts";
import { formatDuration } from "../duration.ts";
import { abortReason, sleep } from "../sleep.ts";
import {
  finalizeSnapshot,
  journalMode,
  removeSnapshot,
  type SnapshotOptions,
  type SnapshotProgress,
  type SnapshotResult,
} from "./snapshot.ts";

/** Options for {@link onlineBackup}. */
export interface OnlineOptions extends SnapshotOptions {
  /** Pages per step, at least 1. Default 100. */
  pagesPerStep?: number;
  /** Pause between steps in ms; 0 for none. Default 10. */
  sleepIntervalMs?: number;
  /** Give up after this many ms; 0 for no limit. Default 3 600 000 (1 hour). */
  maxDurationMs?: number;
  /** Called after each step. */
  onProgress?: (progress: SnapshotProgress) => void;
}

/**
 * Raised when an online backup does not reach DONE within `max_duration`.
 *
 * @example
 * ```ts
 * try {
 *   await onlineBackup("app.db", "/tmp/app-copy.db", { maxDurationMs: 60_000 });
 * } catch (err) {
 *   if (err instanceof BackupTimeoutError) console.error("writers kept restarting the copy; try the vacuum strategy");
 * }
 * ```
 */
export class BackupTimeoutError extends Error {
  /** Always `"BackupTimeoutError"`. */
  override name = "BackupTimeoutError";
}

/**
 * Copies the live database at `sourcePath` into a new file at `destPath` with the Online
 * Backup API. Succeeds only when a step returned SQLITE_DONE; on any failure `destPath`
 * (and its journal files) is removed.
 *
 * @param sourcePath the live database, opened read-only
 * @param destPath the snapshot file to create (must not exist)
 * @param options pagesPerStep (100), sleepIntervalMs (10), maxDurationMs (1 h), busyTimeoutMs (5000), signal, onProgress
 *
 * @example
 * ```ts
 * const { pages, restarts } = await onlineBackup("app.db", "/backups/.snap.db", { sleepIntervalMs: 0 });
 * ```
 */
export async function onlineBackup(
  sourcePath: string,
  destPath: string,
  options: OnlineOptions = {},
): Promise<SnapshotResult> {
  const pagesPerStep = options.pagesPerStep ?? 100;
  const sleepMs = options.sleepIntervalMs ?? 10;
  const maxMs = options.maxDurationMs ?? 3_600_000;
  const signal = options.signal;
  if (!Number.isInteger(pagesPerStep) || pagesPerStep < 1) {
    throw new RangeError(`Invalid pages_per_step ${pagesPerStep}: expected a whole number of at least 1`);
  }
  signal?.throwIfAborted();

  const started = performance.now();
  let source: Database | null = null;
  let dest: Database | null = null;
  let backup: Backup | null = null;
  let ok = false;
  try {
    source = new Database(sourcePath, { mode: "readonly", busyTimeoutMs: options.busyTimeoutMs ?? 5000 });
    const mode = journalMode(source);
    const pinned = mode === "wal";
    if (pinned) {
      // One read transaction for the whole copy: every step reads the same snapshot.
      source.exec("BEGIN");
      source.query("SELECT count(*) FROM sqlite_schema");
    }
    dest = new Database(destPath, { mode: "create" });
    dest.exec("PRAGMA synchronous=OFF");
    backup = new Backup(dest, source);
    let restarts = 0;
    let lastCopied = 0;
    let lastTotal = 0;
    for (;;) {
      if (signal?.aborted) throw abortReason(signal);
      const rc = await backup.step(pagesPerStep);
      const total = backup.pageCount;
      const copied = total - backup.remaining;
      if (rc === SQLITE_DONE) {
        options.onProgress?.({ pagesCopied: total, totalPages: total, restarts });
        break;
      }
      if (rc === SQLITE_OK) {
        // A write by another connection restarts the copy from page 1: the pages copied no
        // longer grow (the first step after a restart copies as many as the step before),
        // or the page count changed. Either is a restart.
        if (lastTotal > 0 && (copied <= lastCopied || total !== lastTotal)) restarts++;
        lastCopied = copied;
        lastTotal = total;
        options.onProgress?.({ pagesCopied: copied, totalPages: total, restarts });
      } else if ((rc & 0xff) !== SQLITE_BUSY && (rc & 0xff) !== SQLITE_LOCKED) {
        throw backup.error(`Online backup of "${sourcePath}" failed`, rc);
      }
      if (maxMs > 0 && performance.now() - started > maxMs) {
        throw new BackupTimeoutError(
          `Online backup of "${sourcePath}" did not finish within max_duration ${formatDuration(maxMs)} ` +
            _timeoutReason(restarts, mode),
        );
      }
      await sleep(sleepMs, signal);
    }
    backup.finish();
    backup = null;
    if (pinned) source.exec("COMMIT");
    dest.close();
    dest = null;
    const pages = await finalizeSnapshot(destPath);
    ok = true;
    return { pages, restarts: restarts, sourceJournalMode: mode };
  } finally {
    try {
      backup?.finish();
    } catch { /* the original error wins */ }
    try {
      dest?.close();
    } catch { /* the original error wins */ }
    try {
      source?.close();
    } catch { /* the original error wins */ }
    if (!ok) await removeSnapshot(destPath);
  }
}

/** Why an online copy ran out of time: writes restarting it, or (0 restarts) its own pace. */
function _timeoutReason(restarts: number, mode: string): string {
  if (restarts === 0) {
    return `(0 restarts: no write restarted the copy, it simply took longer than max_duration; raise max_duration, ` +
      `or copy faster: raise pages_per_step or lower sleep_interval)`;
  }
  const fix = mode === "wal" ? "use the vacuum strategy" : "switch it to WAL, use the vacuum strategy";
  return `(${restarts} restarts: the database is written to constantly in ${mode} journal mode; ${fix}, ` +
    `or raise max_duration)`;
}
