/**
 * Issue 10, point 12: restore onto a symlink checks the file it resolves to; a killed
 * restore's hidden temp file is swept by the next restore into that directory; an idle
 * TRUNCATE or PERSIST `-journal` is told from a hot one (through SQLite, never by opening
 * the live file); a missing directory is named.
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "./support/assert.ts";
import { describe, listDir, makeDatabase, spawnSqlbk, sqlbk, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { startReadyScript } from "./support/writer.ts";

const NAME = "app-2025-03-01T00-00-00Z-vacuum.bck.gz";

/** An app (python3's own SQLite) that opens `db` in `mode`, writes, optionally keeps a transaction open, and waits. */
const _APP = `
import os, sqlite3, sys, time
path, mode, hold, stop = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
db = sqlite3.connect(path, isolation_level=None)
db.execute(f"PRAGMA journal_mode={mode}")
db.execute("CREATE TABLE IF NOT EXISTS app_log (x)")
db.execute("INSERT INTO app_log VALUES (1)")
if hold:
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO app_log VALUES (2)")
print("ready", flush=True)
while not os.path.exists(stop):
    time.sleep(0.02)
if hold:
    db.execute("ROLLBACK")
db.close()
print("done", flush=True)
`;

function startApp(db: string, mode: string, hold: boolean) {
  const stop = `${db}.stop`;
  return startReadyScript(_APP, [db, mode, hold ? "1" : "0", stop], stop);
}

Deno.test("restore --force onto a symlink checks the file it names: refused while that file is in WAL use, then replaced", async () => {
  await using dir = await tempDir();
  const backup = await placeBackup(dir.path, NAME, { rows: 7 });
  await Deno.mkdir(dir.join("data"));
  const target = dir.join("data", "app.db");
  await makeDatabase(target, { rows: 2 });
  const link = dir.join("app.db");
  await Deno.symlink(target, link);
  const app = await startApp(target, "WAL", false);
  let out;
  try {
    out = await sqlbk(["restore", backup, "--to", link, "--force"]);
    assertEquals(out.code, 1, out.stderr);
    assertMatch(out.stderr, /^error: Refusing to restore over ".*data\/app\.db": "app\.db-wal" exists beside it/);
    assertEquals((await describe(target)).counts.items, 2);
  } finally {
    await app.stop();
  }
  out = await sqlbk(["restore", backup, "--to", link, "--force", "--json"]);
  assertEquals(out.code, 0, out.stderr);
  const result = JSON.parse(out.stdout);
  assertEquals(result.path, await Deno.realPath(target));
  assert((await Deno.lstat(link)).isSymlink, "the link is kept");
  assertEquals((await describe(link)).counts.items, 7);
  assertMatch(result.previous, /data\/app\.db\.bak-/);

  // A link to nothing is refused with its name.
  await Deno.symlink(dir.join("data", "gone.db"), dir.join("dangling.db"));
  out = await sqlbk(["restore", backup, "--to", dir.join("dangling.db"), "--force"]);
  assertEquals(out.code, 2, out.stderr);
  assertStringIncludes(out.stderr, "dangling.db");
});

Deno.test("a killed restore's hidden temp file is swept by the next restore into that directory", async () => {
  await using dir = await tempDir();
  const backup = await placeBackup(dir.path, NAME, { rows: 150_000, payload: 300 });
  await Deno.mkdir(dir.join("data"));
  const dest = dir.join("data", "app.db");
  const child = spawnSqlbk(["restore", backup, "--to", dest]);
  const deadline = Date.now() + 60_000;
  let temp: string | undefined;
  while (temp === undefined) {
    temp = (await listDir(dir.join("data"))).find((n) => /^\.app\.db\.restore-[0-9a-f]{8}\.tmp$/.test(n));
    if (Date.now() > deadline) throw new Error("no restore temp file appeared");
    if (temp === undefined) await new Promise((r) => setTimeout(r, 2));
  }
  child.kill("SIGKILL");
  await child.output();
  const left = await listDir(dir.join("data"));
  assert(left.includes(temp), `the kill left its temp file: ${left.join(" ")}`);
  assert(!left.includes("app.db"), "nothing under the final name");
  // A file of someone else's that looks close is never touched.
  await Deno.writeTextFile(dir.join("data", ".app.db.restore-notes.txt"), "keep me");

  const out = await sqlbk(["restore", backup, "--to", dest]);
  assertEquals(out.code, 0, out.stderr);
  assertEquals(await listDir(dir.join("data")), [".app.db.restore-notes.txt", ".sqlbk-restore.lock", "app.db"]);
  assertEquals((await describe(dest)).counts.items, 150_000);
});

Deno.test("restore tells an idle TRUNCATE or PERSIST -journal from a hot one, through SQLite", async () => {
  for (const mode of ["TRUNCATE", "PERSIST"]) {
    await using dir = await tempDir();
    const backup = await placeBackup(dir.path, NAME, { rows: 7 });
    const dest = dir.join("app.db");
    await makeDatabase(dest, { rows: 2, journal: "delete" });
    // The app wrote and closed: an idle journal stays (empty, or with a zeroed header).
    await (await startApp(dest, mode, false)).stop();
    assert((await listDir(dir.path)).includes("app.db-journal"), `${mode}: the idle journal exists`);

    // While a transaction holds the database, the journal is hot: refused, nothing touched.
    const app = await startApp(dest, mode, true);
    try {
      const out = await sqlbk(["restore", backup, "--to", dest, "--force"]);
      assertEquals(out.code, 1, out.stderr);
      assertMatch(
        out.stderr,
        /^error: Refusing to restore over .*"app\.db-journal" exists beside it and a transaction is running/,
      );
    } finally {
      await app.stop();
    }
    assertEquals((await describe(dest)).counts.items, 2, `${mode}: untouched`);

    // Idle again: the restore proceeds.
    const out = await sqlbk(["restore", backup, "--to", dest, "--force"]);
    assertEquals(out.code, 0, `${mode}: ${out.stderr}`);
    assertEquals((await describe(dest)).counts.items, 7);
  }
});

Deno.test("restore into a missing directory names the directory (exit 2)", async () => {
  await using dir = await tempDir();
  const backup = await placeBackup(dir.path, NAME, { rows: 3 });
  const out = await sqlbk(["restore", backup, "--to", dir.join("nowhere", "app.db")]);
  assertEquals(out.code, 2, out.stderr);
  assertMatch(out.stderr, /^error: Cannot restore to ".*nowhere\/app\.db": the directory ".*nowhere" does not exist/);
  assertEquals(await listDir(dir.path), [NAME, `${NAME}.sha256`]);
});
