/**
 * Issue 10, point 11: other runs' files and other databases' backups. Two backups of one
 * database into one directory in the same second: exactly one publishes, the other fails
 * with the "Refusing to overwrite" line and removes nothing it did not create. The
 * duplicate check of `[databases.*]` compares real paths. A source whose name starts with
 * a dot (hidden backup names nothing would see) is refused.
 */

import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "./support/assert.ts";
import { listDir, makeDatabase, spawnSqlbk, sqlbk, tempDir } from "./support/db.ts";
import { runBackup } from "../src/job.ts";
import { AlreadyExistsError } from "../src/fs.ts";
import { ConfigError } from "../src/errors.ts";
import { resolveConfig } from "../src/config.ts";
import { verifyBackup } from "../src/verify.ts";

Deno.test("two backups of one database in the same second: exactly one publishes, the other refuses", async () => {
  await using dir = await tempDir();
  const source = dir.join("app.db");
  await makeDatabase(source, { rows: 5_000, payload: 200 });
  const backupDir = dir.join("backups");
  for (const [i, strategy] of (["vacuum", "online", "vacuum"] as const).entries()) {
    const startTime = new Date(Date.UTC(2025, 6, 1, 10, 0, i));
    const cfg = { sourcePath: source, backupDir, strategy, sleepInterval: "0s" };
    const settled = await Promise.allSettled([runBackup(cfg, { startTime }), runBackup(cfg, { startTime })]);
    const won = settled.filter((r) => r.status === "fulfilled");
    const lost = settled.filter((r) => r.status === "rejected");
    assertEquals([won.length, lost.length], [1, 1], `trial ${i}: ${JSON.stringify(settled)}`);
    const reason = (lost[0] as PromiseRejectedResult).reason;
    assert(reason instanceof AlreadyExistsError, String(reason));
    assertMatch(reason.message, /^Refusing to overwrite ".*app-2025-07-01T10-00-0\dZ-\w+\.bck\.gz": /);
    const file = (won[0] as PromiseFulfilledResult<{ file: string; path: string }>).value;
    await verifyBackup(file.path); // the winner's archive and sidecar are whole
  }
  const names = await listDir(backupDir);
  assertEquals(names.filter((n) => n.endsWith(".bck.gz")).length, 3);
  assertEquals(names.filter((n) => n.startsWith(".") && !n.endsWith(".sha256") && n !== ".sqlbk-verify.lock"), [
    ".sqlbk.lock",
  ], "no temp left");
});

Deno.test("sqlbk backup twice at once into one directory: one publishes, the other prints the refusing line", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("app.db"), { rows: 20_000, payload: 200 });
  let sameSecond = 0;
  for (let trial = 0; trial < 6 && sameSecond < 2; trial++) {
    const backupDir = dir.join(`b${trial}`);
    await new Promise((r) => setTimeout(r, 1050 - (Date.now() % 1000))); // just after a second starts
    const args = ["backup", "app.db", "-s", "vacuum", "-d", backupDir, "-q"];
    const [a, b] = await Promise.all([
      spawnSqlbk(args, { cwd: dir.path }).output(),
      spawnSqlbk(args, { cwd: dir.path }).output(),
    ]);
    const archives = (await listDir(backupDir)).filter((n) => n.endsWith(".bck.gz"));
    if (archives.length === 2) continue; // the two runs fell into different seconds: both publish, fine
    sameSecond++;
    assertEquals(archives.length, 1);
    const codes = [a.code, b.code].sort();
    const stderr = new TextDecoder().decode(a.code === 0 ? b.stderr : a.stderr);
    assertEquals(codes, [0, 1], stderr);
    assertMatch(stderr, /^error: .*Refusing to overwrite ".*app-\S+-vacuum\.bck\.gz": /m);
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    const verify = await sqlbk(["verify", join(backupDir, archives[0])]);
    assertEquals(verify.code, 0, verify.stderr);
    assertEquals(
      (await listDir(backupDir)).filter((n) =>
        n.startsWith(".") && !n.endsWith(".sha256") && n !== ".sqlbk-verify.lock"
      ),
      [".sqlbk.lock"],
    );
  }
  assert(sameSecond >= 1, "no trial started both runs in the same second");
});

Deno.test("the duplicate check of [databases.*] compares real paths of backup_dir", async () => {
  await using dir = await tempDir();
  const b = dir.join("b");
  await Deno.mkdir(b);
  await Deno.symlink(b, dir.join("link"));
  const a1 = join(dir.join("one"), "app.db");
  const a2 = join(dir.join("two"), "app.db");
  for (
    const other of [`${b}/`, `${dir.path}/./b`, dir.join("link"), `${dir.path}/x/../b`]
  ) {
    const err = assertThrows(
      () =>
        resolveConfig({
          databases: { a: { source_path: a1, backup_dir: b }, b: { source_path: a2, backup_dir: other } },
        }),
      ConfigError,
    );
    assertMatch(err.message, /databases "a" and "b" would write the same backup names \("app-\*"\)/);
  }
  // A directory that does not exist yet under a symlinked parent is still the same directory.
  assertThrows(() =>
    resolveConfig({
      databases: {
        a: { source_path: a1, backup_dir: join(b, "new") },
        b: { source_path: a2, backup_dir: join(dir.join("link"), "new") },
      },
    }), ConfigError);
  // Different directories pass.
  resolveConfig({
    databases: { a: { source_path: a1, backup_dir: b }, b: { source_path: a2, backup_dir: dir.join("c") } },
  });
});

Deno.test("a source whose file name starts with a dot is refused with one line (its backups would be hidden)", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join(".hidden.db"), { rows: 10 });
  const out = await sqlbk(["backup", ".hidden.db"], { cwd: dir.path });
  assertEquals(out.code, 2, out.stderr);
  assertMatch(out.stderr, /^error: .*invalid "source_path" "\.hidden\.db": a file name starting with a dot/);
  assertEquals(out.stderr.trim().split("\n").length, 1, out.stderr);
  await assertRejects(() => runBackup({ sourcePath: dir.join(".hidden.db") }), ConfigError, "starting with a dot");
  assertEquals((await listDir(dir.path)).includes("backups"), false);
});
