/**
 * Rewriting a small file that several sqlbk processes may update at once (the metrics
 * file, the status page): under an exclusive lock on `.<name>.lock` beside it, read the
 * current text, compute the new text, and publish it atomically (`<name>.tmp`, fsync,
 * rename, fsync the directory). A reader sees the old file or the new one, never a mix;
 * a killed writer leaves at most `<name>.tmp`, which the next writer overwrites.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { writeFileAtomic } from "../fs.ts";

/**
 * Replaces the file at `path` with `update(current)`, where `current` is its text or
 * null when it does not exist yet. The directory must exist.
 *
 * @example
 * ```ts
 * await rewriteLocked("status.html", () => "<!doctype html><title>ok</title>\n");
 * ```
 */
export async function rewriteLocked(path: string, update: (current: string | null) => string): Promise<void> {
  const lock = await Deno.open(join(dirname(path), `.${basename(path)}.lock`), {
    read: true,
    write: true,
    create: true,
  });
  try {
    await lock.lock(true);
    let current: string | null = null;
    try {
      current = await Deno.readTextFile(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    await writeFileAtomic(path, update(current), { overwrite: true });
  } finally {
    lock.close();
  }
}
