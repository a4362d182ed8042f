/**
 * Restoring a backup: verify it, write the database next to the destination, fsync, and
 * rename it into place. An existing destination is replaced only when asked, and then
 * kept as `<path>.bak-<timestamp>`; a destination in use (a `-wal` or `-journal` file
 * beside it) is never touched.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { ConfigError } from "./errors.ts";
import { exists, fsyncDir, fsyncFile, removeIfExists } from "./fs.ts";
import { formatTimestamp } from "./naming.ts";
import { verifyBackup } from "./verify.ts";
import { Database } from "./sqlite/database.ts";
import { Backup } from "./sqlite/backup.ts";
import { SQLITE_DONE } from "./sqlite/constants.ts";
import { runProbes } from "./monitor/probes.ts";

/** Options for {@link restoreBackup}. */
export interface RestoreOptions {
  /** Replace an existing database (kept as `<to>.bak-<timestamp>`). Default false. */
  force?: boolean;
  /** Whether the backup is gzip-compressed. Default: its name ends in `.gz`. */
  compressed?: boolean;
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
}

/**
 * Verifies `backupPath` and writes the database to `to` atomically.
 *
 * Refuses (ConfigError, exit 2) to replace an existing file without `force`; refuses
 * (exit 1) while `to-wal` or `to-journal` exists, which means the database is in use.
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
  const dest = resolve(to);
  for (const suffix of ["-wal", "-journal"]) {
    if (await exists(dest + suffix)) {
      throw new Error(
        `Refusing to restore over "${dest}": "${
          basename(dest)
        }${suffix}" exists beside it, so the database is in use; stop the application (or let it checkpoint) first`,
      );
    }
  }
  const present = await exists(dest);
  if (present && !options.force) {
    throw new ConfigError(
      `Refusing to replace "${dest}": it exists (use --force to replace it; the old file is kept as "${
        basename(dest)
      }.bak-<timestamp>")`,
    );
  }
  const dir = dirname(dest);
  const compressed = options.compressed ?? /\.gz$/i.test(backupPath);
  const tmp = join(dir, `.${basename(dest)}.restore-${crypto.randomUUID().slice(0, 8)}.tmp`);
  let previous: string | null = null;
  try {
    const v = await verifyBackup(backupPath, {
      compressed,
      keepDatabaseAt: compressed ? tmp : undefined,
      tempDir: dir,
      signal: options.signal,
    });
    if (!compressed) {
      // rule 10: the backup file and our new temp file, never the live target
      await Deno.copyFile(backupPath, tmp);
      // rule 10: our new temp file
      await fsyncFile(tmp);
    }
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
    return { path: dest, previous, sha256: v.sha256, bytes: v.databaseBytes };
  } finally {
    await removeIfExists(tmp).catch(() => {});
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
