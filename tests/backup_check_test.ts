/**
 * Issue 8, item 7: a snapshot is checked before it is published, and a source that is
 * empty, not a database, or damaged never becomes a backup, nor a reason for retention
 * to delete the good ones.
 */

import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { listDir, makeDatabase, sqlbk, sqlite3, tempDir } from "./support/db.ts";
import { runBackup } from "../src/job.ts";

/** Overwrites `count` distinct pages (never page 1, so the file still opens) with seeded noise. */
async function _corruptPages(path: string, count: number, seed = 7): Promise<void> {
  const pageSize = Number(await sqlite3(path, "PRAGMA page_size;"));
  const pages = Number(await sqlite3(path, "PRAGMA page_count;"));
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
  const chosen = new Set<number>();
  while (chosen.size < Math.min(count, pages - 1)) chosen.add(2 + (next() % (pages - 1)));
  const file = await Deno.open(path, { write: true });
  try {
    for (const page of chosen) {
      const noise = new Uint8Array(pageSize).map(() => next() & 0xff);
      await file.seek((page - 1) * pageSize, Deno.SeekMode.Start);
      let off = 0;
      while (off < noise.length) off += await file.write(noise.subarray(off));
    }
  } finally {
    file.close();
  }
}

Deno.test("a damaged, truncated, empty or foreign source publishes nothing and keep_last deletes no good backup", async () => {
  await using dir = await tempDir();
  const db = dir.join("app.db");
  const backups = dir.join("backups");
  await makeDatabase(db, { journal: "delete", rows: 5000, payload: 200 });
  const t0 = Date.now() - 3_600_000;
  for (let i = 0; i < 2; i++) {
    await runBackup({ sourcePath: db, backupDir: backups }, { startTime: new Date(t0 + i * 60_000) });
  }
  const good = await listDir(backups);
  const pristine = await Deno.readFile(db);
  const cases: [string, () => Promise<void>, RegExp][] = [
    ["50 random pages", () => _corruptPages(db, 50), /failed quick_check|malformed|SQLITE_CORRUPT/],
    ["truncated to 0 bytes", () => Deno.truncate(db, 0), /is empty \(0 bytes\)/],
    ["truncated to half", () => Deno.truncate(db, Math.floor(pristine.length / 2)), /quick_check|malformed|CORRUPT/],
    ["not a database", () => Deno.writeTextFile(db, "x".repeat(9000)), /not a readable SQLite database/],
  ];
  for (const strategy of ["online", "vacuum"]) {
    for (const [what, damage, reason] of cases) {
      await Deno.writeFile(db, pristine);
      await damage();
      await new Promise((r) => setTimeout(r, 1000)); // a new backup name each time
      const out = await sqlbk(["backup", db, "-d", backups, "-s", strategy, "--keep-last", "2"]);
      assertEquals(out.code, 1, `${strategy}, ${what}: ${out.stderr}`);
      const errors = out.stderr.split("\n").filter((l) => l.startsWith("error:"));
      assertEquals(errors.length, 1, out.stderr);
      assertMatch(errors[0], reason, `${strategy}, ${what}`);
      assertEquals(await listDir(backups), good, `${strategy}, ${what}: published or deleted something`);
    }
  }
  // A new 0-byte file is a valid empty database to SQLite: never a backup.
  const empty = dir.join("empty", "app.db");
  await Deno.mkdir(dir.join("empty"));
  await Deno.writeFile(empty, new Uint8Array(0));
  const out = await sqlbk(["backup", empty, "-d", backups, "--keep-last", "1"]);
  assertEquals(out.code, 1, out.stderr);
  assertMatch(out.stderr, /^error: .*is empty \(0 bytes\)/);
  assertEquals(await listDir(backups), good);
  for (const name of good.filter((n) => n.endsWith(".bck.gz"))) {
    const verify = await sqlbk(["verify", `${backups}/${name}`]);
    assertEquals(verify.code, 0, verify.stderr);
  }
});

Deno.test("sqlbk backup --check picks the check, and --json says which ran", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("app.db"), { rows: 300 });
  const seen: string[] = [];
  for (const check of ["quick", "full", "none"]) {
    const out = await sqlbk(["backup", "app.db", "--check", check, "--json", "-d", check], { cwd: dir.path });
    assertEquals(out.code, 0, out.stderr);
    const result = JSON.parse(out.stdout);
    seen.push(result.check);
    assert(typeof result.checkMs === "number");
  }
  assertEquals(seen, ["quick", "full", "none"]);
  const logged = await sqlbk(["backup", "app.db", "-d", "logged"], { cwd: dir.path });
  assertMatch(logged.stderr, /snapshot passed quick_check/);
  const bad = await sqlbk(["backup", "app.db", "--check", "thorough"], { cwd: dir.path });
  assertEquals(bad.code, 2);
  assertMatch(bad.stderr, /^error: command line: invalid "check" "thorough": expected "quick", "full" or "none"/);
});
