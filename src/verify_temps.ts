/**
 * The temp files that verification writes beside backups (`verify`, `pull`, probes) and
 * the sweep of those a killed run left: the first run to find no other run in a directory
 * removes them, under the directory's `.sqlbk-verify.lock` (see `DirectoryLock`); while any
 * run holds that lock (shared), nothing is swept, so a run still going keeps its files.
 *
 * @module
 */

import { join } from "node:path";
import { DirectoryLock } from "./archive.ts";
import { removeIfExists } from "./fs.ts";
import { parseBackupName } from "./naming.ts";

/** The lock file verifying runs hold (shared) in the directory of their temp files. */
export const VERIFY_LOCK = ".sqlbk-verify.lock";

/** What SQLite may leave beside a database file. */
const _SQLITE = "(-journal|-wal|-shm)?";
const _TEMPS = [
  new RegExp(`^\\.sqlbk-verify-[0-9a-f]{8}\\.db${_SQLITE}$`), // a decompressed copy being checked
  new RegExp(`^\\.sqlbk-probe-[0-9a-f]{8}\\.db${_SQLITE}$`), // a copy for --probe
  new RegExp(`^\\.sqlbk-.+-latest-[0-9a-f]{8}\\.db\\.tmp${_SQLITE}$`), // pull --decompress's <db>-latest.db
];
/** A pulled archive's sidecar being written: `<archive>.sha256.tmp`. */
const _SIDECAR_TEMP = /^(.+)\.sha256\.tmp$/;

/**
 * Whether `name` is one of the temp files verification and pull write.
 *
 * @example
 * ```ts
 * isVerifyLeftover(".sqlbk-verify-1f2e3d4c.db"); // true
 * isVerifyLeftover(".sqlbk-app-latest-1f2e3d4c.db.tmp-wal"); // true
 * isVerifyLeftover("app-latest.db"); // false
 * ```
 */
export function isVerifyLeftover(name: string): boolean {
  if (_TEMPS.some((re) => re.test(name))) return true;
  const m = _SIDECAR_TEMP.exec(name);
  return m !== null && parseBackupName(m[1]) !== null;
}

/**
 * Removes the temp files of verifying runs killed in `dir` (see {@link isVerifyLeftover})
 * and nothing else; resolves to the names removed. Call it only while no such run is
 * going in `dir` ({@link holdVerifyDir} does).
 *
 * @example
 * ```ts
 * const removed = await sweepVerifyLeftovers("/srv/pulled");
 * ```
 */
export async function sweepVerifyLeftovers(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !isVerifyLeftover(entry.name)) continue;
    if (await removeIfExists(join(dir, entry.name))) removed.push(entry.name);
  }
  return removed;
}

/**
 * Takes `dir/.sqlbk-verify.lock` (shared) for as long as a run keeps temp files in `dir`;
 * when no other run holds it, crashed runs' temp files are swept first. Holding it twice
 * in one process is fine.
 *
 * @example
 * ```ts
 * const lock = await holdVerifyDir("/srv/pulled");
 * try { ... } finally { lock.release(); }
 * ```
 */
export function holdVerifyDir(dir: string): Promise<DirectoryLock> {
  return DirectoryLock.acquire(dir, { lockName: VERIFY_LOCK, sweep: sweepVerifyLeftovers });
}
