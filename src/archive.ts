/**
 * Publishing a snapshot: gzip it while hashing the compressed bytes into `<final>.tmp`,
 * fsync, write the `<final>.sha256` sidecar (temp, fsync, link), then move the archive to
 * its final name without ever overwriting, and fsync the directory. The sidecar goes first
 * so that a run killed between the two leaves at worst a sidecar without its archive
 * (swept by the next run), never an archive without its checksum. Also the sweep of a crashed run's
 * leftovers and the lock that keeps the sweep away from a running backup's files.
 *
 * @module
 */

import { join } from "node:path";
import { gzipFile, type GzipOptions } from "./gzip.ts";
import { AlreadyExistsError, exists, publishFile, removeIfExists, writeFileAtomic } from "./fs.ts";
import { parseBackupName } from "./naming.ts";

/** What {@link publishArchive} wrote. */
export interface PublishedArchive {
  /** Path of the published archive. */
  path: string;
  /** Its size in bytes. */
  bytes: number;
  /** SHA-256 of the archive, lowercase hex (also in `<path>.sha256`). */
  sha256: string;
  /** Size of the uncompressed snapshot. */
  inputBytes: number;
}

/**
 * Compresses `snapshotPath` and publishes it as `dir/finalName` plus a `sha256sum`-style
 * sidecar. Nothing appears under a final name until it is complete and on disk; an
 * existing final name is never replaced ({@link AlreadyExistsError}). On failure the temp
 * files are removed and the error (write, flush, fsync, close) is thrown.
 *
 * @param snapshotPath the finished snapshot
 * @param finalPath where the archive goes, e.g. `backups/app-2025-07-01T10-30-00Z-vacuum.bck.gz`
 * @param options gzip options (level, workers, signal, onProgress)
 *
 * @example
 * ```ts
 * const { sha256 } = await publishArchive(".sqlbk-app.snapshot", "backups/app-2025-07-01T10-30-00Z-vacuum.bck.gz");
 * ```
 */
export async function publishArchive(
  snapshotPath: string,
  finalPath: string,
  options: GzipOptions = {},
): Promise<PublishedArchive> {
  await assertNameFree(finalPath);
  const temp = `${finalPath}.tmp`;
  let sidecar = false;
  try {
    const file = await Deno.open(temp, { write: true, createNew: true });
    let result;
    try {
      result = await gzipFile(snapshotPath, file, options);
      await file.sync();
    } finally {
      file.close();
    }
    const name = finalPath.split(/[\\/]/).pop()!;
    await writeFileAtomic(`${finalPath}.sha256`, `${result.sha256}  ${name}\n`);
    sidecar = true;
    await publishFile(temp, finalPath);
    return { path: finalPath, bytes: result.outputBytes, sha256: result.sha256, inputBytes: result.inputBytes };
  } catch (err) {
    await removeIfExists(temp).catch(() => {});
    if (sidecar) await removeIfExists(`${finalPath}.sha256`).catch(() => {});
    throw err;
  }
}

/**
 * Throws {@link AlreadyExistsError} when a backup is already published under `finalPath`.
 * A cheap early check so no work is spent on a name that is taken; publishing itself
 * refuses atomically as well.
 *
 * @example
 * ```ts
 * await assertNameFree("backups/app-2025-07-01T10-30-00Z-vacuum.bck.gz");
 * ```
 */
export async function assertNameFree(finalPath: string): Promise<void> {
  if (await exists(finalPath)) {
    throw new AlreadyExistsError(
      `Refusing to overwrite "${finalPath}": a backup with that name exists (two runs in the same second?)`,
    );
  }
}

/** A sidecar; it is a leftover only when its archive is missing (a run killed between the two). */
const _SIDECAR = /^(.+\.bck\.gz)\.sha256$/;

/** The names of a run's temporary files; the sweep removes only these. */
const _LEFTOVER = [
  /^\.sqlbk-.+\.snapshot(-journal|-wal|-shm)?$/, // a strategy's snapshot
  /^(.+\.bck\.gz)\.tmp$/, // an archive being written
  /^(.+\.bck\.gz)\.sha256\.tmp$/, // a sidecar being written
];

/**
 * Whether `name` is one of sqlbk's own temp files in a backup directory.
 *
 * @example
 * ```ts
 * isLeftover("app-2025-07-01T10-30-00Z-vacuum.bck.gz.tmp"); // true
 * isLeftover("notes.tmp"); // false
 * ```
 */
export function isLeftover(name: string): boolean {
  const [snapshot, archive, sidecar] = _LEFTOVER;
  if (snapshot.test(name)) return true;
  const m = archive.exec(name) ?? sidecar.exec(name);
  return m !== null && parseBackupName(m[1]) !== null;
}

/**
 * The name of a snapshot temp file for `stem` (hidden, so it is never mistaken for a backup).
 *
 * @example
 * ```ts
 * snapshotTempName("app"); // ".sqlbk-app-1f2e3d4c.snapshot"
 * ```
 */
export function snapshotTempName(stem: string): string {
  return `.sqlbk-${stem}-${crypto.randomUUID().slice(0, 8)}.snapshot`;
}

/**
 * Holds a lock file in a backup directory for the length of a run. The first run to find
 * no other run active sweeps the leftovers of crashed runs; while any run holds its
 * shared lock, no sweep touches the directory.
 *
 * @example
 * ```ts
 * const lock = await DirectoryLock.acquire("backups");
 * try { ... } finally { lock.release(); }
 * ```
 */
export class DirectoryLock {
  #file: Deno.FsFile;
  /** The leftovers removed when the lock was taken. */
  readonly swept: string[];

  private constructor(file: Deno.FsFile, swept: string[]) {
    this.#file = file;
    this.swept = swept;
  }

  /** Takes the lock on `dir/.sqlbk.lock`, sweeping leftovers when no other run is active. */
  static async acquire(dir: string): Promise<DirectoryLock> {
    const file = await Deno.open(join(dir, ".sqlbk.lock"), { read: true, write: true, create: true });
    try {
      const swept: string[] = [];
      if (await file.tryLock(true)) {
        swept.push(...await sweepLeftovers(dir));
        await file.unlock();
      }
      await file.lock(false);
      return new DirectoryLock(file, swept);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /** Releases the lock. Calling it again does nothing. */
  release(): void {
    try {
      this.#file.close();
    } catch { /* already closed */ }
  }
}

/**
 * Removes sqlbk's own temp files from `dir` (see {@link isLeftover}) and sidecars whose
 * archive is missing (a run killed between publishing the two); other files are never
 * touched. Call it only while no backup runs in `dir` ({@link DirectoryLock} does).
 *
 * @example
 * ```ts
 * const removed = await sweepLeftovers("backups");
 * ```
 */
export async function sweepLeftovers(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile) continue;
    const orphan = _SIDECAR.exec(entry.name);
    if (orphan) {
      if (parseBackupName(orphan[1]) === null || await exists(join(dir, orphan[1]))) continue;
      if (!await _isOurSidecar(join(dir, entry.name), orphan[1])) continue; // someone else's file
    } else if (!isLeftover(entry.name)) {
      continue;
    }
    if (await removeIfExists(join(dir, entry.name))) removed.push(entry.name);
  }
  return removed;
}

/** Whether `path` is a sidecar as sqlbk writes it (`<sha256>  <archive>\n`), read only when small. */
async function _isOurSidecar(path: string, archive: string): Promise<boolean> {
  try {
    if ((await Deno.lstat(path)).size > 4096) return false;
    const text = await Deno.readTextFile(path);
    return text === `${text.slice(0, 64)}  ${archive}\n` && /^[0-9a-f]{64}$/.test(text.slice(0, 64));
  } catch {
    return false;
  }
}
