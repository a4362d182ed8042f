/**
 * Publishing a snapshot: compress it (gzip or zstd, as the final name says) while hashing
 * the compressed bytes into `.<final>.tmp`,
 * fsync, write the `.<final>.sha256` sidecar (temp, fsync, link), then move the archive to
 * its final name without ever overwriting, and fsync the directory. The sidecar goes first
 * so that a run killed between the two leaves at worst a sidecar without its archive
 * (swept by the next run), never an archive without its checksum. Also the sweep of a crashed run's
 * leftovers and the lock that keeps the sweep away from a running backup's files.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { codecOfName, compressFile, type CompressOptions } from "./codecs/codec.ts";
import { AlreadyExistsError, exists, publishFile, removeIfExists, writeFileAtomic } from "./fs.ts";
import { archiveTempName, parseBackupName, sidecarName } from "./naming.ts";

/** What {@link publishArchive} wrote. */
export interface PublishedArchive {
  /** Path of the published archive. */
  path: string;
  /** Its size in bytes. */
  bytes: number;
  /** SHA-256 of the archive, lowercase hex (also in the sidecar `.<name>.sha256`). */
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
 * @param finalPath where the archive goes, e.g. `backups/app-2025-07-01T10-30-00Z-vacuum.bck.gz`; a name
 *   ending in `.zst` is compressed with zstd, any other with gzip
 * @param options compression options (level, workers, signal, onProgress), and `gate`: a
 *   promise (the snapshot's check, running while the archive is written) that must resolve
 *   before anything is published; when it rejects, nothing is and its error is thrown.
 *   Default: none.
 *
 * @example
 * ```ts
 * const { sha256 } = await publishArchive(".sqlbk-app.snapshot", "backups/app-2025-07-01T10-30-00Z-vacuum.bck.gz");
 * ```
 */
export async function publishArchive(
  snapshotPath: string,
  finalPath: string,
  options: CompressOptions & { gate?: Promise<unknown> } = {},
): Promise<PublishedArchive> {
  options.gate?.catch(() => {}); // awaited below; a compression error may come first
  await assertNameFree(finalPath);
  const dir = dirname(finalPath);
  const name = basename(finalPath);
  const temp = join(dir, archiveTempName(name));
  const sidecarPath = join(dir, sidecarName(name));
  let file: Deno.FsFile;
  try {
    file = await Deno.open(temp, { write: true, createNew: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    // Another run is writing this very name (two runs in the same second): its file, not ours.
    throw new AlreadyExistsError(
      `Refusing to overwrite "${finalPath}": another run is writing a backup with that name (two runs in the same second?)`,
      { cause: err },
    );
  }
  let sidecar = false;
  try {
    let result;
    try {
      result = await compressFile(snapshotPath, file, { ...options, codec: codecOfName(finalPath) ?? "gzip" });
      await file.sync();
    } finally {
      file.close();
    }
    await options.gate;
    try {
      await writeFileAtomic(sidecarPath, `${result.sha256}  ${name}\n`);
    } catch (err) {
      if (err instanceof AlreadyExistsError) {
        throw new AlreadyExistsError(
          `Refusing to overwrite "${finalPath}": a backup with that name exists (two runs in the same second?)`,
          { cause: err },
        );
      }
      throw err;
    }
    sidecar = true;
    await publishFile(temp, finalPath);
    return { path: finalPath, bytes: result.outputBytes, sha256: result.sha256, inputBytes: result.inputBytes };
  } catch (err) {
    await removeIfExists(temp).catch(() => {});
    if (sidecar) await removeIfExists(sidecarPath).catch(() => {});
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

/**
 * A sidecar (`.<archive>.sha256`, or `<archive>.sha256` of earlier versions); it is a
 * leftover only when its archive is missing (a run killed between the two).
 */
const _SIDECARS = [/^\.(.+)\.sha256$/, /^(.+)\.sha256$/];

/** The names of a run's temporary files; the sweep removes only these. */
const _SNAPSHOT = /^\.sqlbk-.+\.snapshot(-journal|-wal|-shm)?$/; // a strategy's snapshot
const _TEMPS = [
  /^\.(.+)\.tmp$/, // an archive being written, `.<archive>.tmp`
  /^\.(.+)\.sha256\.tmp$/, // a sidecar being written, `.<archive>.sha256.tmp`
  /^(.+)\.tmp$/, // the same, as earlier versions named them: `<archive>.tmp`
  /^(.+)\.sha256\.tmp$/, // and `<archive>.sha256.tmp`
];

/**
 * Whether `name` is one of sqlbk's own temp files in a backup directory.
 *
 * @example
 * ```ts
 * isLeftover(".app-2025-07-01T10-30-00Z-vacuum.bck.gz.tmp"); // true
 * isLeftover("app-2025-07-01T10-30-00Z-vacuum.bck.gz.tmp"); // true (an earlier version's)
 * isLeftover("notes.tmp"); // false
 * ```
 */
export function isLeftover(name: string): boolean {
  if (_SNAPSHOT.test(name)) return true;
  return _TEMPS.some((re) => {
    const m = re.exec(name);
    return m !== null && parseBackupName(m[1]) !== null;
  });
}

/** The archive a sidecar name belongs to (when it names one of ours), else null. */
function _sidecarOf(name: string): string | null {
  for (const re of _SIDECARS) {
    const m = re.exec(name);
    if (m && parseBackupName(m[1]) !== null) return m[1];
  }
  return null;
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

  /**
   * Takes the lock on `dir/.sqlbk.lock`, sweeping leftovers when no other run is active.
   * Other kinds of run (a restore) pass their own lock file name and sweep: `lockName`
   * (default `.sqlbk.lock`) and `sweep` (default {@link sweepLeftovers}).
   */
  static async acquire(
    dir: string,
    options: { lockName?: string; sweep?: (dir: string) => Promise<string[]> } = {},
  ): Promise<DirectoryLock> {
    const file = await Deno.open(join(dir, options.lockName ?? ".sqlbk.lock"), {
      read: true,
      write: true,
      create: true,
    });
    try {
      const swept: string[] = [];
      if (await file.tryLock(true)) {
        swept.push(...await (options.sweep ?? sweepLeftovers)(dir));
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
    const orphan = _sidecarOf(entry.name);
    if (orphan !== null) {
      if (await exists(join(dir, orphan))) continue;
      if (!await _isOurSidecar(join(dir, entry.name), orphan)) continue; // someone else's file
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
