/**
 * Restoring a backup: verify it, write the database next to the destination, fsync, and
 * rename it into place. An existing destination is replaced only when asked, and then
 * kept as `<path>.bak-<timestamp>`; a destination in use (a `-wal` beside it, or a
 * `-journal` while a transaction holds the database) is never touched. A symbolic link
 * is resolved: the file it names is replaced. The restored database is one file in
 * rollback-journal `DELETE` mode. The temp files of a killed restore are swept by the
 * next restore into that directory (under `.sqlbk-restore.lock`).
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { ConfigError } from "./errors.ts";
import { exists, fsyncDir, fsyncFile, removeIfExists, writeRefusal } from "./fs.ts";
import type { CheckLevel } from "./integrity.ts";
import { formatTimestamp } from "./naming.ts";
import { assertBackupFile, verifyBackup } from "./verify.ts";
import { DirectoryLock } from "./archive.ts";
import { Database } from "./sqlite/database.ts";
import { Backup } from "./sqlite/backup.ts";
import { SQLITE_DONE } from "./sqlite/constants.ts";
import { runProbes } from "./monitor/probes.ts";

/** Options for {@link restoreBackup}. */
export interface RestoreOptions {
  /** Replace an existing database (kept as `<to>.bak-<timestamp>`). Default false. */
  force?: boolean;
  /** Whether the backup is compressed. Default: what its first bytes (else its name: `.gz`, `.zst`) say. */
  compressed?: boolean;
  /** The check before restoring: `full` (default) or `quick`. */
  check?: CheckLevel;
  /** Connections the check uses at once. Default: the number of cores. */
  jobs?: number;
  /** Cancels the restore; nothing is replaced. */
  signal?: AbortSignal;
  /** SQL probes run read-only on the verified copy before it replaces anything (see `runProbes`). Default: none. */
  probes?: string[];
}

/** What {@link restoreBackup} did. */
export interface RestoreResult {
  /** The database written. */
  path: string;
  /** Where the replaced database was kept, or null when there was none. */
  previous: string | null;
  /** SHA-256 of the backup file. */
  sha256: string;
  /** Size of the restored database. */
  bytes: number;
  /** The check that ran before the restore. */
  check: CheckLevel;
}

/**
 * Verifies `backupPath` and writes the database to `to` atomically.
 *
 * Refuses (ConfigError, exit 2) to replace an existing file without `force`, to write
 * into a missing directory or one this user cannot write, to restore from a directory
 * or onto one; refuses (exit 1) while `to-wal` exists, or `to-journal` exists
 * and a transaction holds the database: it is in use.
 * A backup that fails verification throws VerifyError (exit 3) and touches nothing.
 *
 * @example
 * ```ts
 * const { previous } = await restoreBackup("pulled/app-2025-07-01T10-30-00Z-vacuum.bck.gz", "/srv/app/app.db", {
 *   force: true,
 * });
 * console.log(previous); // "/srv/app/app.db.bak-2025-07-02T08-00-00Z"
 * ```
 */
export async function restoreBackup(
  backupPath: string,
  to: string,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  await assertBackupFile(backupPath, "restore");
  const dest = await _resolveTarget(resolve(to));
  const dir = dirname(dest);
  if ((await Deno.stat(dest).catch(() => null))?.isDirectory) {
    throw new ConfigError(
      `Cannot restore to "${dest}": it is a directory; give the database file to write, e.g. "${join(dest, "app.db")}"`,
    );
  }
  try {
    if (!(await Deno.stat(dir)).isDirectory) throw new Deno.errors.NotFound(dir);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    throw new ConfigError(
      `Cannot restore to "${dest}": the directory "${dir}" does not exist (create it first, or restore elsewhere)`,
      { cause: err },
    );
  }
  if (await exists(`${dest}-wal`)) {
    throw new Error(
      `Refusing to restore over "${dest}": "${
        basename(dest)
      }-wal" exists beside it, so the database is in use; stop the application (or let it checkpoint) first`,
    );
  }
  if (await exists(`${dest}-journal`)) _assertJournalIdle(dest);
  const present = await exists(dest);
  if (present && !options.force) {
    throw new ConfigError(
      `Refusing to replace "${dest}": it exists (use --force to replace it; the old file is kept as "${
        basename(dest)
      }.bak-<timestamp>")`,
    );
  }
  const tmp = join(dir, `.${basename(dest)}.restore-${crypto.randomUUID().slice(0, 8)}.tmp`);
  let lock: DirectoryLock;
  try {
    lock = await DirectoryLock.acquire(dir, { lockName: RESTORE_LOCK, sweep: sweepRestoreLeftovers });
  } catch (err) {
    const refusal = writeRefusal(err);
    if (refusal === null) throw err;
    throw new ConfigError(
      `Cannot restore to "${dest}": cannot write in "${dir}" (${refusal}), where the database is written ` +
        `before it is renamed into place; restore as a user who may write there, or to another directory`,
      { cause: err },
    );
  }
  let previous: string | null = null;
  try {
    // The database checked is the one renamed into place: a plain file is copied first.
    const v = await verifyBackup(backupPath, {
      compressed: options.compressed,
      keepDatabaseAt: tmp,
      tempDir: dir,
      signal: options.signal,
      check: options.check,
      jobs: options.jobs,
    });
    await runProbes(tmp, options.probes ?? [], { label: backupPath });
    options.signal?.throwIfAborted();
    if (present) {
      previous = `${dest}.bak-${formatTimestamp(new Date())}`;
      try {
        await Deno.link(dest, previous);
      } catch (err) {
        if (err instanceof Deno.errors.AlreadyExists) throw err;
        // No hard links here: copy through SQLite, never by opening the database file
        // ourselves (closing such a descriptor drops this process's locks on it; rule 10).
        await _copyThroughSqlite(dest, previous);
        // rule 10: the new copy SQLite just wrote and closed
        await fsyncFile(previous);
      }
    }
    await Deno.rename(tmp, dest);
    await fsyncDir(dir);
    return { path: dest, previous, sha256: v.sha256, bytes: v.databaseBytes, check: v.check };
  } finally {
    await removeIfExists(tmp).catch(() => {});
    lock.release();
  }
}

/** The lock file a restore holds in the destination's directory while it runs. */
export const RESTORE_LOCK = ".sqlbk-restore.lock";

/** A restore's temp file (and what SQLite may have made beside it): `.<name>.restore-<id>.tmp`. */
const _RESTORE_TEMP = /^\..+\.restore-[0-9a-f]{8}\.tmp(-journal|-wal|-shm)?$/;

/**
 * Removes the temp files of restores killed in `dir` (`.<name>.restore-<id>.tmp`), and
 * nothing else. Call it only while no restore runs there (the restore lock does).
 *
 * @example
 * ```ts
 * const removed = await sweepRestoreLeftovers("/srv/app/data");
 * ```
 */
export async function sweepRestoreLeftovers(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !_RESTORE_TEMP.test(entry.name)) continue;
    if (await removeIfExists(join(dir, entry.name))) removed.push(entry.name);
  }
  return removed;
}

/**
 * The file a restore writes: `path` itself, or, when `path` is a symbolic link, the file
 * it resolves to (the link is kept, the file it names is replaced), so the in-use checks
 * look beside the file the application really opens.
 */
async function _resolveTarget(path: string): Promise<string> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return path;
    throw err;
  }
  if (!info.isSymlink) return path;
  try {
    return await Deno.realPath(path);
  } catch (err) {
    throw new ConfigError(
      `Cannot restore to "${path}": it is a symbolic link to a missing file (point it at a file, or restore to the file itself)`,
      { cause: err },
    );
  }
}

/**
 * A `-journal` beside `dest` is either idle (a TRUNCATE or PERSIST journal of a closed
 * database: empty, or with a zeroed header) or hot (a transaction is running or crashed).
 * Only SQLite tells them apart without touching the file ourselves (rule 10): a write
 * lock (`BEGIN IMMEDIATE`, no waiting) is refused while a transaction runs; once granted,
 * SQLite has already rolled back a crashed transaction's hot journal.
 */
function _assertJournalIdle(dest: string): void {
  const inUse = (detail: string, cause?: unknown) =>
    new Error(
      `Refusing to restore over "${dest}": "${
        basename(dest)
      }-journal" exists beside it and ${detail}; stop the application first`,
      { cause },
    );
  let db: Database;
  try {
    db = new Database(dest, { mode: "readwrite", busyTimeoutMs: 0 });
  } catch (err) {
    throw inUse("SQLite cannot open the database", err);
  }
  try {
    try {
      db.exec("BEGIN IMMEDIATE");
    } catch (err) {
      throw inUse("a transaction is running on it (the database is locked)", err);
    }
    db.exec("ROLLBACK");
  } finally {
    db.close();
  }
}

/** A page-exact copy of the database at `from` into the new file `to`, through the backup API. */
async function _copyThroughSqlite(from: string, to: string): Promise<void> {
  const source = new Database(from, { mode: "readonly" });
  try {
    const target = new Database(to, { mode: "create" });
    try {
      const backup = new Backup(target, source);
      try {
        const rc = await backup.step(-1);
        if (rc !== SQLITE_DONE) throw backup.error(`Cannot copy "${from}" to "${to}"`, rc);
      } finally {
        backup.finish();
      }
      target.exec("PRAGMA journal_mode=DELETE");
    } finally {
      target.close();
    }
  } finally {
    source.close();
  }
}
