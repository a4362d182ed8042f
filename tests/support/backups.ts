/**
 * Test support: real backup archives (made by the real backup job) placed under chosen
 * names, with `sha256sum`-style sidecars.
 *
 * @module
 */

import { join } from "node:path";
import { runBackup } from "../../src/job.ts";
import { sha256File } from "../../src/hash.ts";
import { makeDatabase, type MakeDatabaseOptions } from "./db.ts";

/**
 * Makes a database with `makeDatabase`, backs it up with `runBackup` (gzip unless
 * `compression` says zstd), and moves the archive
 * to `dir/name` (with `dir/name.sha256` unless `sidecar: false`). Returns the archive path.
 */
export async function placeBackup(
  dir: string,
  name: string,
  options: MakeDatabaseOptions & { sidecar?: boolean; compression?: "gzip" | "zstd" } = {},
): Promise<string> {
  const work = await Deno.makeTempDir({ prefix: "sqlbk-src-" });
  try {
    const db = join(work, "src.db");
    await makeDatabase(db, options);
    const result = await runBackup({ sourcePath: db, backupDir: join(work, "out"), compression: options.compression });
    const path = join(dir, name);
    await Deno.copyFile(result.path, path);
    if (options.sidecar !== false) {
      await Deno.writeTextFile(`${path}.sha256`, `${await sha256File(path)}  ${name}\n`);
    }
    return path;
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** Flips some bytes in the middle of a file. */
export async function flipBytes(path: string, at = 0.5, count = 16): Promise<void> {
  const data = await Deno.readFile(path);
  const start = Math.floor(data.length * at);
  for (let i = start; i < Math.min(data.length, start + count); i++) data[i] ^= 0xff;
  await Deno.writeFile(path, data);
}
