import { assertEquals, assertThrows } from "./support/assert.ts";
import { tempDir } from "./support/db.ts";
import { isEmptySql, sqlAfterFirstStatement } from "../src/sqlite/sql_text.ts";
import { Database } from "../src/sqlite/database.ts";

Deno.test("sqlAfterFirstStatement() skips semicolons in strings, quoted names and comments", () => {
  const cases: [string, string][] = [
    ["SELECT 1", ""],
    ["SELECT 1; SELECT 0", " SELECT 0"],
    ["SELECT 'a;b'; x", " x"],
    ["SELECT 'it''s;' ; x", " x"],
    [`SELECT "a;""b" FROM t; x`, " x"],
    ["SELECT `a;b`; x", " x"],
    ["SELECT [a;b]; x", " x"],
    ["SELECT 1 -- a; b\n; x", " x"],
    ["SELECT 1 /* a; b */; x", " x"],
    ["SELECT 1 -- a; b", ""],
    ["SELECT 'unterminated; x", ""],
  ];
  for (const [sql, rest] of cases) assertEquals(sqlAfterFirstStatement(sql), rest, sql);
  for (const sql of ["", "  ", ";;", " ; -- x\n /* y; */ ;", "-- only a comment", "/* unclosed"]) {
    assertEquals(isEmptySql(sql), true, sql);
  }
  for (const sql of ["x", "; SELECT 1", "-- c\nSELECT 1", "/* c */ 1"]) assertEquals(isEmptySql(sql), false, sql);
});

Deno.test("Database.prepare() refuses SQL with a second statement instead of dropping it; exec() runs them all", async () => {
  await using dir = await tempDir();
  const db = new Database(dir.join("t.db"));
  try {
    db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1); -- done");
    assertEquals(db.query("SELECT x FROM t;  -- trailing comment\n ;"), [{ x: 1 }]);
    assertEquals(db.query("SELECT ';' AS s"), [{ s: ";" }]);
    assertThrows(
      () => db.query("SELECT x FROM t; DELETE FROM t"),
      Error,
      `Cannot prepare "SELECT x FROM t; DELETE FROM t": it holds more than one statement (after the first comes "DELETE FROM t")`,
    );
    assertThrows(() => db.run("INSERT INTO t VALUES (2); INSERT INTO t VALUES (3)"), Error, "more than one statement");
    assertEquals(db.query("SELECT count(*) AS n FROM t"), [{ n: 1 }]); // neither ran
  } finally {
    db.close();
  }
});
