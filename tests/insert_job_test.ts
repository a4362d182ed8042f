import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { listDir, makeDatabase, sqlbk, sqlite3, tempDir } from "./support/db.ts";
import { jobRows, TIMESTAMP, ts, wholeSecond } from "./support/queue.ts";

Deno.test("sqlbk insert-job accepts the Go tool's single-dash flags and writes the Go row", async () => {
  await using dir = await tempDir();
  const db = dir.join("app.db");
  await makeDatabase(db, { rows: 10 });
  const before = wholeSecond();
  const out = await sqlbk([
    "insert-job",
    "-dbpath",
    db,
    "-interval=1h30m",
    "-scheduled",
    "2030-06-01T05:00:00+02:00",
    "--create-schema",
  ]);
  assertEquals(out.code, 0, out.stderr);
  assertMatch(out.stdout, /^inserted job 1: db_backup every 1h30m0s, first run 2030-06-01T03:00:00Z\n$/);
  const [row] = await jobRows(db);
  assertEquals(
    [row.job_type, row.payload, row.payload_extra, row.status, row.attempts, row.max_attempts, row.recurrent],
    ["db_backup", "{}", "", "pending", 0, 0, 1],
  );
  assertEquals([row.interval, row.scheduled_for], ["1h30m0s", "2030-06-01T03:00:00Z"]);
  assertEquals([row.locked_by, row.locked_at, row.completed_at, row.last_error], ["", "", "", ""]);
  assertMatch(row.created_at, TIMESTAMP);
  assertEquals(row.updated_at, row.created_at);
  assert(Date.parse(row.created_at) >= before);
});

Deno.test("sqlbk insert-job defaults to a 24h interval starting now, written in canonical form", async () => {
  await using dir = await tempDir();
  const db = dir.join("app.db");
  await makeDatabase(db, { rows: 10 });
  const before = wholeSecond();
  const out = await sqlbk(["insert-job", "--dbpath", db, "--create-schema"]);
  assertEquals(out.code, 0, out.stderr);
  const [row] = await jobRows(db);
  assertEquals(row.interval, "24h0m0s");
  assertMatch(row.scheduled_for, TIMESTAMP);
  assert(Date.parse(row.scheduled_for) >= before && Date.parse(row.scheduled_for) <= Date.now());
  for (const [text, canonical] of [["15m", "15m0s"], ["30s", "30s"], ["2h0m", "2h0m0s"]]) {
    const r = await sqlbk(["insert-job", "--dbpath", db, "--interval", text, "--replace"]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await jobRows(db))[0].interval, canonical);
  }
});

Deno.test("sqlbk insert-job without job_queue fails clearly unless --create-schema is given", async () => {
  await using dir = await tempDir();
  const db = dir.join("app.db");
  await makeDatabase(db, { rows: 10 });
  const out = await sqlbk(["insert-job", "--dbpath", db, "--interval", "24h"]);
  assertEquals(out.code, 2);
  assertEquals(out.stdout, "");
  assertMatch(out.stderr, /^error: Table "job_queue" not found in ".*app\.db".*--create-schema"\n$/);
  assertEquals(await sqlite3(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'job_queue';"), "0");
  const created = await sqlbk(["insert-job", "--dbpath", db, "--interval", "24h", "--create-schema"]);
  assertEquals(created.code, 0, created.stderr);
  assertMatch(created.stderr, /created table job_queue/);
  assertEquals((await jobRows(db)).length, 1);
  // The app's own tables are untouched.
  assertEquals(await sqlite3(db, "SELECT count(*) FROM items;"), "10");
});

Deno.test("sqlbk insert-job a second time names the existing row; --replace swaps it", async () => {
  await using dir = await tempDir();
  const db = dir.join("app.db");
  await makeDatabase(db, { rows: 10 });
  const first = await sqlbk([
    "insert-job",
    "--dbpath",
    db,
    "--interval",
    "24h",
    "--scheduled",
    "2031-01-01T03:00:00Z",
    "--create-schema",
  ]);
  assertEquals(first.code, 0, first.stderr);
  const dup = await sqlbk(["insert-job", "--dbpath", db, "--interval", "1h"]);
  assertEquals(dup.code, 2);
  assertMatch(
    dup.stderr,
    /^error: Cannot insert the backup job into ".*": a db_backup job already exists: row id 1, interval 24h0m0s, next run 2031-01-01T03:00:00Z, status pending; use --replace to swap it\n$/,
  );
  assertEquals((await jobRows(db)).map((r) => r.interval), ["24h0m0s"]);
  const replaced = await sqlbk(["insert-job", "--dbpath", db, "--interval", "1h", "--replace"]);
  assertEquals(replaced.code, 0, replaced.stderr);
  assertMatch(replaced.stderr, /replaced job 1/);
  const rows = await jobRows(db);
  assertEquals(rows.map((r) => [r.id, r.interval, r.payload]), [[2, "1h0m0s", "{}"]]);
});

Deno.test("sqlbk insert-job rejects bad flags with one line and exit code 2", async () => {
  await using dir = await tempDir();
  const db = dir.join("app.db");
  await makeDatabase(db, { rows: 10 });
  const cases: [string[], RegExp][] = [
    [["--interval", "1d"], /Invalid --interval "1d".*no "d" unit: write "24h"/],
    [["--interval", "500ms"], /Invalid --interval "500ms": expected whole seconds, at least 1s/],
    [["--scheduled", "tomorrow"], /Invalid --scheduled "tomorrow": expected an RFC 3339 time/],
    // Impossible dates are refused in every zone (Go does), never rolled over to the next month.
    [["--scheduled", "2025-04-31T10:00:00+02:00"], /Invalid --scheduled "2025-04-31T10:00:00\+02:00"/],
    [["--scheduled", "2025-04-31T10:00:00Z"], /Invalid --scheduled "2025-04-31T10:00:00Z"/],
    [["--scheduled", "2025-02-29T10:00:00-05:00"], /Invalid --scheduled "2025-02-29T10:00:00-05:00"/],
    [["--bogus"], /Unknown option '--bogus'/],
  ];
  for (const [args, pattern] of cases) {
    const out = await sqlbk(["insert-job", "--dbpath", db, "--create-schema", ...args]);
    assertEquals(out.code, 2, args.join(" "));
    assertMatch(out.stderr, pattern);
    assertEquals(out.stderr.trim().split("\n").length, 1, out.stderr);
  }
  const missing = await sqlbk(["insert-job", "--interval", "1h"]);
  assertEquals(missing.code, 2);
  assertMatch(missing.stderr, /Missing --dbpath/);
  const nofile = await sqlbk(["insert-job", "--dbpath", dir.join("nope.db"), "--create-schema"]);
  assertEquals(nofile.code, 2);
  assertMatch(nofile.stderr, /Invalid --dbpath ".*nope\.db": no such file/);
  assertEquals((await listDir(dir.path)).includes("nope.db"), false, "a mistyped path is not created");
  assertEquals(await sqlite3(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'job_queue';"), "0");
});

Deno.test("sqlbk insert-job keeps due-ness comparable as text: scheduled_for sorts like time", async () => {
  await using dir = await tempDir();
  const db = dir.join("app.db");
  await makeDatabase(db, { rows: 1 });
  const when = wholeSecond() - 3_600_000;
  const out = await sqlbk([
    "insert-job",
    "--dbpath",
    db,
    "--scheduled",
    new Date(when).toISOString(),
    "--create-schema",
  ]);
  assertEquals(out.code, 0, out.stderr);
  assertEquals((await jobRows(db))[0].scheduled_for, ts(when));
  assertEquals(
    await sqlite3(db, "SELECT count(*) FROM job_queue WHERE scheduled_for <= strftime('%Y-%m-%dT%H:%M:%SZ', 'now');"),
    "1",
  );
});
