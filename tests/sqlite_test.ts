import { assert, assertEquals, assertThrows } from "./support/assert.ts";
import { Database } from "../src/sqlite/database.ts";
import { Backup } from "../src/sqlite/backup.ts";
import { SqliteError } from "../src/sqlite/error.ts";
import { loadSqlite, platformLibraryNames } from "../src/sqlite/ffi.ts";
import { SQLITE_DONE } from "../src/sqlite/constants.ts";
import { makeDatabase, run, sqlite3, tempDir } from "./support/db.ts";

Deno.test("loadSqlite() loads the system libsqlite3, 3.35 or newer", () => {
  const { version } = loadSqlite();
  const [major, minor] = version.split(".").map(Number);
  assert(major === 3 && minor >= 35, version);
  assertEquals(platformLibraryNames("linux")[0], "libsqlite3.so.0");
  assertEquals(platformLibraryNames("darwin")[0], "libsqlite3.dylib");
  assertEquals(platformLibraryNames("windows"), ["sqlite3.dll", "winsqlite3.dll"]);
});

Deno.test("SQLBK_SQLITE_LIB pointing at a missing library gives one clear error naming what was tried", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(
    dir.join("probe.ts"),
    `import { loadSqlite } from "${
      new URL("../src/sqlite/ffi.ts", import.meta.url).href
    }";\ntry { loadSqlite(); } catch (e) { console.log(e.message); }`,
  );
  const out = await run(Deno.execPath(), ["run", "--allow-ffi", "--allow-env", dir.join("probe.ts")], {
    env: { SQLBK_SQLITE_LIB: "/nonexistent/libsqlite3.so" },
  });
  assert(out.stdout.includes("/nonexistent/libsqlite3.so"), out.stdout + out.stderr);
  assert(out.stdout.includes("SQLBK_SQLITE_LIB"), out.stdout);
});

Deno.test("Database binds and reads text, 64-bit integers, reals, blobs and nulls", async () => {
  await using dir = await tempDir();
  const db = new Database(dir.join("t.db"));
  try {
    db.exec("CREATE TABLE t (a, b, c, d, e); -- a comment\n");
    const big = 2n ** 62n + 1n;
    db.run("INSERT INTO t VALUES (?, ?, ?, ?, ?)", ["héllo ✓", big, 1.5, new Uint8Array([0, 1, 255]), null]);
    db.run("INSERT INTO t VALUES (?, ?, ?, ?, ?)", ["", 42, -0.25, new Uint8Array(0), true]);
    const rows = db.query("SELECT * FROM t ORDER BY rowid");
    assertEquals(rows[0], { a: "héllo ✓", b: big, c: 1.5, d: new Uint8Array([0, 1, 255]), e: null });
    assertEquals(rows[1], { a: "", b: 42, c: -0.25, d: new Uint8Array(0), e: 1 });
    assertEquals(await db.queryAsync("SELECT count(*) AS n FROM t WHERE b > ?", [0]), [{ n: 2 }]);
    const { changes, lastInsertRowid } = db.run("INSERT INTO t (a) VALUES (?)", ["x"]);
    assertEquals([changes, lastInsertRowid], [1, 3]);
  } finally {
    db.close();
    db.close(); // idempotent
  }
  assertEquals(await sqlite3(dir.join("t.db"), "SELECT a FROM t WHERE rowid = 1;"), "héllo ✓");
});

Deno.test("SqliteError carries the result code, extended code and SQLite's message", async () => {
  await using dir = await tempDir();
  const db = new Database(dir.join("t.db"));
  try {
    db.exec("CREATE TABLE u (x UNIQUE); INSERT INTO u VALUES (1)");
    const syntax = assertThrows(() => db.exec("SELEC 1"), SqliteError);
    assert(syntax instanceof SqliteError);
    assertEquals(syntax.codeName, "SQLITE_ERROR");
    assert(syntax.sqliteMessage.includes("syntax error"));
    const unique = assertThrows(() => db.run("INSERT INTO u VALUES (1)"), SqliteError);
    assert(unique instanceof SqliteError);
    assertEquals([unique.code, unique.extendedCode], [19, 2067]); // SQLITE_CONSTRAINT_UNIQUE
  } finally {
    db.close();
  }
  const missing = assertThrows(() => new Database(dir.join("nope/x.db"), { mode: "readonly" }), SqliteError);
  assert(missing instanceof SqliteError && missing.codeName === "SQLITE_CANTOPEN");
  await Deno.writeTextFile(dir.join("garbage.db"), "this is not a database, just text that is long enough".repeat(20));
  const garbage = new Database(dir.join("garbage.db"), { mode: "readonly" });
  try {
    const notadb = assertThrows(() => garbage.query("SELECT * FROM sqlite_schema"), SqliteError);
    assert(notadb instanceof SqliteError && notadb.codeName === "SQLITE_NOTADB");
  } finally {
    garbage.close();
  }
});

Deno.test("Backup copies a database page by page until DONE", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("src.db"), { rows: 500 });
  const src = new Database(dir.join("src.db"), { mode: "readonly" });
  const dst = new Database(dir.join("dst.db"));
  try {
    const backup = new Backup(dst, src);
    let steps = 0;
    let rc;
    while ((rc = await backup.step(5)) !== SQLITE_DONE) {
      assertEquals(rc, 0);
      steps++;
    }
    assert(steps > 3, `expected several steps, got ${steps}`);
    assertEquals(backup.remaining, 0);
    assert(backup.pageCount > 15);
    backup.finish();
    backup.finish(); // idempotent
  } finally {
    dst.close();
    src.close();
  }
  assertEquals(await sqlite3(dir.join("dst.db"), "SELECT count(*) FROM items;"), "500");
});

Deno.test("a nonblocking statement keeps the event loop running and can be interrupted", async () => {
  await using dir = await tempDir();
  const db = new Database(dir.join("t.db"));
  try {
    const stmt = db.prepare(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    );
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    setTimeout(() => db.interrupt(), 200);
    const err = await stmt.allAsync().then(() => null, (e) => e);
    clearInterval(timer);
    stmt.finalize();
    assert(err instanceof SqliteError && err.codeName === "SQLITE_INTERRUPT", String(err));
    assert(ticks >= 10, `the event loop ran only ${ticks} ticks during the statement`);
  } finally {
    db.close();
  }
});
