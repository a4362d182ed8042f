/**
 * Example: pull the newest backups from a server from a Deno app, then restore one.
 *
 *   deno run -A examples/pull.ts backup@db1.example.com:/var/backups/app ./pulled
 *
 * @module
 */

import { listBackups, pull, restoreBackup, VerifyError } from "../mod.ts";

if (import.meta.main) {
  const [target, localDir = "./pulled"] = Deno.args;
  if (!target) {
    console.error("usage: examples/pull.ts [user@]host:/remote/dir [local dir]");
    Deno.exit(2);
  }
  try {
    const results = await pull(target, { localDir, keepLast: 7, onLog: console.error });
    for (const r of results) console.log(`${r.database}: ${r.path}${r.skipped ? " (already here)" : ""}`);
    const newest = (await listBackups(localDir)).filter((b) => b.latest);
    if (newest.length > 0 && Deno.env.get("RESTORE_TO")) {
      const { path, previous } = await restoreBackup(`${localDir}/${newest[0].file}`, Deno.env.get("RESTORE_TO")!, {
        force: true,
      });
      console.log(`restored to ${path}${previous ? ` (old copy kept as ${previous})` : ""}`);
    }
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : err}`);
    Deno.exit(err instanceof VerifyError ? 3 : 1);
  }
}
