/**
 * Listing a local backup directory for `sqlbk list` and `sqlbk status`, with one wording
 * and one exit code for each way it can fail: a path that is not a directory is the
 * user's mistake (exit 2); a missing or unreadable directory is a failure (exit 1).
 *
 * @module
 */

import { ConfigError, errorMessage } from "../src/errors.ts";
import { type BackupEntry, listBackups } from "../src/pull/list.ts";

/** `listBackups(dir)`, its errors as one sentence naming `dir` (see {@link listingError}). */
export async function listLocal(dir: string): Promise<BackupEntry[]> {
  try {
    return await listBackups(dir);
  } catch (err) {
    throw listingError(dir, err);
  }
}

/** The error to report when reading the backups in `dir` failed with `err`. */
export function listingError(dir: string, err: unknown): Error {
  const what = `Cannot read backups in "${dir}"`;
  if (err instanceof Deno.errors.NotADirectory) {
    return new ConfigError(`${what}: it is not a directory (give the directory that holds the backups)`, {
      cause: err,
    });
  }
  if (err instanceof Deno.errors.NotFound) return new Error(`${what}: no such directory`, { cause: err });
  if (err instanceof Deno.errors.PermissionDenied) {
    return new Error(`${what}: permission denied (this user must be able to read and enter it)`, { cause: err });
  }
  return new Error(`${what}: ${errorMessage(err)}`, { cause: err });
}
