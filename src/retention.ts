/**
 * Retention: after a successful backup, delete a database's oldest backups beyond
 * `keep_last`, with their sidecars. Only files in sqlbk's own name grammar, for that
 * database, that are regular files, are ever candidates. Backups dated in the future
 * (a clock that jumped, a hostile server: see `isFromTheFuture`) neither count among the
 * kept ones nor are deleted, so they can never push a genuine backup out.
 *
 * @module
 */

import { join } from "node:path";
import { type BackupName, compareBackupNames, isFromTheFuture, parseBackupName, sidecarNames } from "./naming.ts";
import { removeIfExists } from "./fs.ts";

/** Options for {@link applyRetention}. */
export interface RetentionOptions {
  /**
   * How many backups of the database to keep (the protected one counts among them);
   * 0 keeps everything. Required: no default.
   */
  keepLast: number;
  /** A file that is never deleted (the backup just written), whatever its timestamp. */
  protect?: string;
  /** Which name grammars count. Default: only sqlbk's own (`dashed`). */
  grammars?: BackupName["grammar"][];
  /** The time names are judged against (Unix ms), for names dated in the future. Default: now. */
  now?: number;
}

/**
 * Deletes the oldest backups of `database` in `dir` so that at most `options.keepLast`
 * remain (the protected one counts among them). `keepLast` 0 keeps everything. Returns
 * the names deleted, oldest first.
 *
 * @example
 * ```ts
 * const deleted = await applyRetention("backups", "app", {
 *   keepLast: 7,
 *   protect: "app-2025-07-01T10-30-00Z-vacuum.bck.gz",
 * });
 * ```
 */
export async function applyRetention(dir: string, database: string, options: RetentionOptions): Promise<string[]> {
  const { keepLast } = options;
  if (keepLast <= 0) return [];
  const grammars = options.grammars ?? ["dashed"];
  const mine: BackupName[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile) continue;
    const parsed = parseBackupName(entry.name);
    if (!parsed || parsed.database !== database || !grammars.includes(parsed.grammar)) continue;
    if (isFromTheFuture(parsed, options.now) && parsed.name !== options.protect) continue;
    mine.push(parsed);
  }
  mine.sort(compareBackupNames);
  const others = mine.filter((b) => b.name !== options.protect);
  const protectedCount = mine.length - others.length;
  const excess = others.length + protectedCount - keepLast;
  const doomed = excess > 0 ? others.slice(0, excess) : [];
  const deleted: string[] = [];
  for (const backup of doomed) {
    await removeIfExists(join(dir, backup.name));
    for (const sidecar of sidecarNames(backup.name)) await removeIfExists(join(dir, sidecar));
    deleted.push(backup.name);
  }
  return deleted;
}
