import { assert, assertEquals, assertRejects, assertStringIncludes } from "./support/assert.ts";
import { sqlite3, tempDir } from "./support/db.ts";
import { CORRUPTIONS, makeCorruptDatabase, makeSoundDatabase } from "./support/corrupt.ts";
import { checkDatabase } from "../src/integrity.ts";
import { integrityCheck } from "../src/verify.ts";
import { Database } from "../src/sqlite/database.ts";
import { SqliteError } from "../src/sqlite/error.ts";

/** One `PRAGMA quick_check`, as the reference for the quick level. */
async function quickCheck(path: string): Promise<boolean> {
  let db: Database;
  try {
    db = new Database(path, { mode: "readonly" });
  } catch (err) {
    if (err instanceof SqliteError) return false;
    throw err;
  }
  try {
    const rows = await db.queryAsync("PRAGMA quick_check");
    return rows.length === 1 && Object.values(rows[0])[0] === "ok";
  } catch (err) {
    if (err instanceof SqliteError) return false;
    throw err;
  } finally {
    db.close();
  }
}

Deno.test("checkDatabase() passes a sound database with 1, 2 and 8 connections, in full and quick", async () => {
  await using dir = await tempDir();
  const path = dir.join("sound.db");
  await makeSoundDatabase(path);
  for (const jobs of [1, 2, 8]) {
    const full = await checkDatabase(path, { jobs });
    assertEquals([full.ok, full.level, full.messages], [true, "full", []], `jobs ${jobs}`);
    // quick_check plus one integrity_check(TABLE) per table (users, posts, tags); with one
    // connection, the single PRAGMA integrity_check.
    assertEquals([full.parts, full.jobs], jobs === 1 ? [1, 1] : [4, Math.min(jobs, 4)], `jobs ${jobs}`);
    const quick = await checkDatabase(path, { jobs, level: "quick" });
    assertEquals([quick.ok, quick.level, quick.parts], [true, "quick", 1]);
  }
  // No -wal, -shm or -journal is left beside the checked file.
  assertEquals([...Deno.readDirSync(dir.path)].map((e) => e.name), ["sound.db"]);
});

Deno.test("checkDatabase() flags every corrupted fixture the single PRAGMA integrity_check flags, and quick what quick_check flags", async () => {
  await using dir = await tempDir();
  for (const kind of CORRUPTIONS) {
    const path = await makeCorruptDatabase(dir.path, kind);
    const single = await integrityCheck(path);
    for (const jobs of [1, 2]) {
      const parallel = await checkDatabase(path, { jobs });
      assertEquals(parallel.ok, single.ok, `${kind}, jobs ${jobs}: ${parallel.messages} vs ${single.messages}`);
      if (!single.ok) assert(parallel.messages.length > 0 && parallel.messages.length <= 10, kind);
    }
    const quick = await checkDatabase(path, { level: "quick" });
    assertEquals(quick.ok, await quickCheck(path), `${kind} (quick)`);
    // SQLite 3.40's integrity_check does not evaluate CHECK constraints; every other
    // fixture is a failure, so the equivalence above is not vacuous.
    if (kind !== "check") assert(!single.ok, `${kind} should fail the single pragma`);
  }
});

Deno.test("checkDatabase() reports the index cross-check findings quick_check misses, as integrity_check words them", async () => {
  await using dir = await tempDir();
  const path = await makeCorruptDatabase(dir.path, "broken-index");
  const single = await integrityCheck(path);
  const parallel = await checkDatabase(path, { jobs: 2 });
  const quick = await checkDatabase(path, { level: "quick" });
  assertEquals(quick.ok, true); // the damage is invisible without the index cross-check
  assertEquals(parallel.ok, false);
  assertEquals(parallel.messages, single.messages);
  assertStringIncludes(parallel.messages[0], "missing from index users_name");
});

Deno.test("checkDatabase() runs the single PRAGMA integrity_check when one table holds 90% of the work, and it still finds a broken index", async () => {
  await using dir = await tempDir();
  const path = dir.join("one.db");
  // big: 5000 rows and one index (10000); small: 500 rows and one index (1000): 91%.
  await sqlite3(
    path,
    `CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT); CREATE INDEX big_name ON big(name);
CREATE TABLE small (id INTEGER PRIMARY KEY, name TEXT); CREATE INDEX small_name ON small(name);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) INSERT INTO big SELECT x, 'n' || x FROM c;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500) INSERT INTO small SELECT x, 'n' || x FROM c;`,
  );
  const sound = await checkDatabase(path, { jobs: 2 });
  assertEquals([sound.ok, sound.parts, sound.jobs], [true, 1, 1]);
  // Below the share, the split runs: quick_check and one part per table.
  await sqlite3(
    path,
    `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500) INSERT INTO small SELECT 500 + x, 'm' || x FROM c;`,
  );
  const split = await checkDatabase(path, { jobs: 2 });
  assertEquals([split.ok, split.parts, split.jobs], [true, 3, 2]);
  // The index entries of big's rows point at other rows: only the index cross-check sees it.
  await sqlite3(
    path,
    `PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = 'CREATE INDEX big_name ON big(id)' WHERE name = 'big_name';`,
  );
  await sqlite3(path, `DELETE FROM small WHERE id > 500;`);
  const single = await integrityCheck(path);
  const broken = await checkDatabase(path, { jobs: 2 });
  assertEquals([broken.ok, broken.parts], [false, 1]);
  assertEquals(broken.messages, single.messages);
  assertEquals((await checkDatabase(path, { level: "quick" })).ok, true);
});

Deno.test("checkDatabase() fails an empty file and a file that is not a database without throwing", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(dir.join("empty.db"), new Uint8Array(0));
  const empty = await checkDatabase(dir.join("empty.db"));
  assertEquals(empty.ok, false);
  assertStringIncludes(empty.messages[0], "not a SQLite database with at least one page");
  await Deno.writeTextFile(dir.join("text.db"), "hello, this is not a database at all".repeat(200));
  const text = await checkDatabase(dir.join("text.db"));
  assertEquals(text.ok, false);
  assertStringIncludes(text.messages[0], "not a database");
  await assertRejects(() => checkDatabase(dir.join("missing.db")), Deno.errors.NotFound);
});

Deno.test("checkDatabase() checks tables with quotes and spaces in their names", async () => {
  await using dir = await tempDir();
  const path = dir.join("names.db");
  await sqlite3(
    path,
    `CREATE TABLE "odd ""name"" here" (a TEXT UNIQUE); INSERT INTO "odd ""name"" here" VALUES ('x'), ('y');
     CREATE TABLE 'single''quote' (b); CREATE INDEX i ON 'single''quote'(b); INSERT INTO 'single''quote' VALUES (1);`,
  );
  const r = await checkDatabase(path, { jobs: 2 });
  assertEquals([r.ok, r.messages, r.parts], [true, [], 3]);
});

Deno.test("checkDatabase() stops when its signal aborts", async () => {
  await using dir = await tempDir();
  const path = dir.join("sound.db");
  await makeSoundDatabase(path);
  const controller = new AbortController();
  controller.abort(new Error("stopped by the test"));
  await assertRejects(() => checkDatabase(path, { signal: controller.signal }), Error, "stopped by the test");
});
