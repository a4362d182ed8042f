/**
 * The `vacuum` strategy: `VACUUM INTO ?` with the target bound as a parameter, run off
 * the JavaScript thread. Fast and compact (a defragmented copy, free pages dropped).
 *
 * @module
 */

import { Database } from "../sqlite/database.ts";
import { abortReason } from "../sleep.ts";
import {
  finalizeSnapshot,
  journalMode,
  removeSnapshot,
  type SnapshotOptions,
  type SnapshotResult,
} from "./snapshot.ts";

/** Options for {@link vacuumBackup}. */
export type VacuumOptions = SnapshotOptions;

/**
 * Writes a compact copy of the database at `sourcePath` to the new file `destPath` with
 * `VACUUM INTO`. The source is opened read-only. An abort interrupts the statement
 * (`sqlite3_interrupt`); on any failure `destPath` is removed.
 *
 * @param sourcePath the live database
 * @param destPath the snapshot file to create (must not exist)
 * @param options busyTimeoutMs (default 5000), signal
 *
 * @example
 * ```ts
 * const { pages } = await vacuumBackup("app.db", "/backups/.snap.db");
 * ```
 */
export async function vacuumBackup(
  sourcePath: string,
  destPath: string,
  options: VacuumOptions = {},
): Promise<SnapshotResult> {
  const signal = options.signal;
  signal?.throwIfAborted();
  let source: Database | null = null;
  let ok = false;
  const onAbort = () => source?.interrupt();
  try {
    source = new Database(sourcePath, { mode: "readonly", busyTimeoutMs: options.busyTimeoutMs ?? 5000 });
    const mode = journalMode(source);
    const stmt = source.prepare("VACUUM INTO ?");
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await stmt.runAsync([destPath]);
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      throw err;
    } finally {
      stmt.finalize();
    }
    if (signal?.aborted) throw abortReason(signal);
    source.close();
    source = null;
    const pages = await finalizeSnapshot(destPath);
    ok = true;
    return { pages, restarts: 0, sourceJournalMode: mode };
  } finally {
    signal?.removeEventListener("abort", onAbort);
    try {
      source?.close();
    } catch { /* the original error wins */ }
    if (!ok) await removeSnapshot(destPath);
  }
}
