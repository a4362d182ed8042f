/**
 * File system helpers for atomic publishing: write to a temp name, fsync, rename (or
 * link, to refuse overwriting), fsync the directory.
 *
 * @module
 */

import { dirname } from "node:path";
import { ConfigError } from "./errors.ts";

/**
 * Writes every byte of `data` to `file`, looping over short writes.
 *
 * @example
 * ```ts
 * await writeAll(file, new TextEncoder().encode("hello"));
 * ```
 */
export async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.byteLength) off += await file.write(data.subarray(off));
}

/**
 * Flushes a directory's entries (new and renamed names) to disk. A no-op on Windows,
 * where directories cannot be opened for fsync.
 *
 * @example
 * ```ts
 * await fsyncDir("./backups");
 * ```
 */
export async function fsyncDir(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}

/**
 * Flushes a file's data and metadata to disk.
 *
 * @example
 * ```ts
 * await fsyncFile("pulled/app.bck.gz.partial");
 * ```
 */
export async function fsyncFile(path: string): Promise<void> {
  const file = await Deno.open(path, { read: true, write: true });
  try {
    await file.sync();
  } finally {
    file.close();
  }
}

/**
 * Removes a file, ignoring "not found". Other errors are thrown.
 *
 * @example
 * ```ts
 * await removeIfExists("backups/app.bck.gz.tmp");
 * ```
 */
export async function removeIfExists(path: string): Promise<boolean> {
  try {
    await Deno.remove(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * Whether `path` exists (without following a final symlink).
 *
 * @example
 * ```ts
 * if (await exists("app.db-wal")) console.log("in use");
 * ```
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Raised when a final name is already taken and overwriting was not allowed. */
export class AlreadyExistsError extends Error {
  override name = "AlreadyExistsError";
}

/**
 * Moves a finished, fsynced temp file to its final name in the same directory, then
 * fsyncs the directory. With `overwrite: false` (the default) an existing final name is
 * never replaced: the temp file is hard-linked to the final name, which fails atomically
 * when the name is taken, and then removed.
 *
 * @param tempPath the complete temp file
 * @param finalPath the name to publish under
 * @param options `overwrite` (default false): replace an existing file atomically
 *
 * @example
 * ```ts
 * await publishFile("backups/app.bck.gz.tmp", "backups/app.bck.gz");
 * ```
 */
export async function publishFile(
  tempPath: string,
  finalPath: string,
  options: { overwrite?: boolean } = {},
): Promise<void> {
  if (options.overwrite) {
    await Deno.rename(tempPath, finalPath);
  } else {
    try {
      await Deno.link(tempPath, finalPath);
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) {
        throw new AlreadyExistsError(`Refusing to overwrite "${finalPath}": a file with that name already exists`, {
          cause: err,
        });
      }
      // A file system without hard links: check, then rename (not atomic against a
      // concurrent writer of the same name, which sqlbk's own naming makes unlikely).
      if (await exists(finalPath)) {
        throw new AlreadyExistsError(`Refusing to overwrite "${finalPath}": a file with that name already exists`);
      }
      await Deno.rename(tempPath, finalPath);
      await fsyncDir(dirname(finalPath));
      return;
    }
    await Deno.remove(tempPath);
  }
  await fsyncDir(dirname(finalPath));
}

/**
 * Writes `data` to `<path>.tmp`, fsyncs, and publishes it as `path` (see {@link publishFile}).
 * The temp file is removed if anything fails.
 *
 * @example
 * ```ts
 * await writeFileAtomic("backups/app.bck.gz.sha256", "abc…  app.bck.gz\n");
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: { overwrite?: boolean; mode?: number } = {},
): Promise<void> {
  const temp = `${path}.tmp`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const file = await Deno.open(temp, { write: true, create: true, truncate: true, mode: options.mode });
  try {
    try {
      await writeAll(file, bytes);
      await file.sync();
    } finally {
      file.close();
    }
    await publishFile(temp, path, options);
  } catch (err) {
    await removeIfExists(temp).catch(() => {});
    throw err;
  }
}

/**
 * Whether `err` says the file system is full (ENOSPC, or EDQUOT: over quota).
 *
 * @example
 * ```ts
 * try { await Deno.writeFile("/dev/full", new Uint8Array(1)); } catch (err) { isDiskFull(err); } // true
 * ```
 */
export function isDiskFull(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return e !== null && typeof e === "object" &&
    (e.code === "ENOSPC" || e.code === "EDQUOT" ||
      /\b(ENOSPC|EDQUOT)\b|no space left on device|disk quota exceeded|os error (28|122)\)/i.test(String(e.message)));
}

/**
 * The error for a full file system, naming the file that could not be written.
 *
 * @example
 * ```ts
 * throw diskFullError(err, "/srv/pulled/app.bck.gz.partial");
 * // Cannot write "/srv/pulled/app.bck.gz.partial": no space left on device (free some space there, or pull elsewhere)
 * ```
 */
export function diskFullError(err: unknown, path: string): Error {
  return new Error(`Cannot write "${path}": no space left on device (free some space there, or pull elsewhere)`, {
    cause: err,
  });
}

/**
 * Why the file system refused a write, when `err` says it did: `"permission denied"` or
 * `"read-only file system"`; else null (another failure).
 *
 * @example
 * ```ts
 * try { await Deno.writeTextFile("/proc/x", ""); } catch (err) { writeRefusal(err); } // "permission denied"
 * ```
 */
export function writeRefusal(err: unknown): "permission denied" | "read-only file system" | null {
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e === null || typeof e !== "object") return null;
  return e.code === "EROFS" || /os error 30\)|read-only file system/i.test(String(e.message))
    ? "read-only file system"
    : null;
}

/**
 * Creates directory `dir` (and its parents) when missing, refusing (ConfigError, exit 2)
 * a path that is a file or that this user may not create; `what` starts the message,
 * e.g. `Cannot pull into`.
 *
 * @example
 * ```ts
 * await ensureDirectory("/srv/pulled/app", "Cannot pull into");
 * ```
 */
export async function ensureDirectory(dir: string, what: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists || err instanceof Deno.errors.NotADirectory) {
      const isFile = (await Deno.stat(dir).catch(() => null))?.isFile;
      throw new ConfigError(
        `${what} "${dir}": ${isFile ? "it is a file" : "a part of the path is a file"}, not a directory`,
        { cause: err },
      );
    }
    const refusal = writeRefusal(err);
    if (refusal !== null) throw new ConfigError(`${what} "${dir}": cannot create it (${refusal})`, { cause: err });
    throw err;
  }
}
