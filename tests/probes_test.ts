import { assert, assertEquals, assertRejects, assertStringIncludes } from "./support/assert.ts";
import { listDir, makeDatabase, sqlbk, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { pullArgs, startSshd } from "./support/sshd.ts";
import { runProbes } from "../src/monitor/probes.ts";
import { ConfigError, VerifyError } from "../src/errors.ts";
import { formatBackupName } from "../src/naming.ts";

Deno.test("runProbes() passes on true or non-zero first values and names the probe and its value otherwise", async () => {
  await using dir = await tempDir();
  const db = dir.join("copy.db");
  await makeDatabase(db, { rows: 20, journal: "delete" });
  await runProbes(db, ["SELECT count(*) > 0 FROM items", "SELECT count(*) FROM notes", "SELECT true", "SELECT 0.5"]);
  const cases: [string, string][] = [
    ["SELECT count(*) FROM items WHERE id > 1000", `probe "SELECT count(*) FROM items WHERE id > 1000" returned 0`],
    ["SELECT note FROM notes WHERE id = 1", `returned "one", not true`],
    ["SELECT NULL", "returned NULL"],
    ["SELECT id FROM notes", "returned 3 rows"],
    ["SELECT count(*) FROM users", "no such table: users"],
    ["DELETE FROM notes RETURNING 1", "failed: "],
    ["SELEKT 1", "syntax error"],
  ];
  for (const [probe, expected] of cases) {
    const err = await assertRejects(() => runProbes(db, [probe], { label: "app.bck.gz" }), VerifyError, expected);
    assertStringIncludes(err.message, `Backup "app.bck.gz" failed verification: probe "${probe}"`);
  }
  // Read-only: the DELETE did nothing, and no journal or WAL file was left.
  await runProbes(db, ["SELECT count(*) = 3 FROM notes"]);
  assertEquals(await listDir(dir.path), ["copy.db"]);
});

Deno.test("sqlbk verify --probe: a passing probe exits 0, a failing or erroring one exits 3 naming it", async () => {
  await using dir = await tempDir();
  const archive = await placeBackup(dir.path, "app-2025-07-01T10-30-00Z-online.bck.gz", { rows: 30 });
  const pass = await sqlbk(["verify", archive, "--probe", "SELECT count(*) = 30 FROM items", "--probe", "SELECT 1"]);
  assertEquals(pass.code, 0, pass.stderr);
  const fail = await sqlbk(["verify", archive, "--probe", "SELECT count(*) > 100 FROM items"]);
  assertEquals(fail.code, 3);
  assertStringIncludes(fail.stderr, `probe "SELECT count(*) > 100 FROM items" returned 0, not true`);
  const error = await sqlbk(["verify", archive, "--probe", "SELECT max(created) FROM orders"]);
  assertEquals(error.code, 3);
  assertStringIncludes(error.stderr, "no such table: orders");
  // Probes from the config's "probes" key; no temp copies are left behind (only the lock
  // verification holds in the directory of its temp files).
  const config = dir.join("probes.toml");
  await Deno.writeTextFile(config, `probes = ["SELECT count(*) FROM notes WHERE note = 'four'"]\n`);
  assertEquals((await sqlbk(["verify", archive, "-c", config])).code, 3);
  assertEquals(await listDir(dir.path), [
    ".sqlbk-verify.lock",
    "app-2025-07-01T10-30-00Z-online.bck.gz",
    "app-2025-07-01T10-30-00Z-online.bck.gz.sha256",
    "probes.toml",
  ]);
});

Deno.test("sqlbk restore --probe refuses to write a database whose probe fails", async () => {
  await using dir = await tempDir();
  const archive = await placeBackup(dir.path, "app-2025-07-01T10-30-00Z-online.bck.gz", { rows: 10 });
  const bad = await sqlbk([
    "restore",
    archive,
    "--to",
    dir.join("app.db"),
    "--probe",
    "SELECT count(*) > 10 FROM items",
  ]);
  assertEquals(bad.code, 3);
  assertStringIncludes(bad.stderr, `probe "SELECT count(*) > 10 FROM items" returned 0`);
  assert(!(await listDir(dir.path)).some((n) => n.includes("app.db")), "something was written");
  const good = await sqlbk([
    "restore",
    archive,
    "--to",
    dir.join("app.db"),
    "--probe",
    "SELECT count(*) = 10 FROM items",
  ]);
  assertEquals(good.code, 0, good.stderr);
});

Deno.test("sqlbk pull --probe verifies each download with the probes before publishing it", async () => {
  await using server = await startSshd();
  await using dir = await tempDir();
  const name = formatBackupName("app", new Date(Date.now() - 3_600_000), { strategy: "online" });
  await placeBackup(server.remoteDir, name, { rows: 40 });
  const env = { SSH_AUTH_SOCK: "" };
  const to = dir.join("pulled");
  const failed = await sqlbk(pullArgs(server, to, "-q", "--probe", "SELECT count(*) FROM items WHERE id > 40"), {
    env,
  });
  assertEquals(failed.code, 3, failed.stderr);
  assertStringIncludes(failed.stderr, `probe "SELECT count(*) FROM items WHERE id > 40" returned 0`);
  assertStringIncludes(failed.stderr, "earlier local backups are untouched");
  assert(!(await listDir(to)).includes(name), "a backup that failed its probe was published");
  const ok = await sqlbk(pullArgs(server, to, "-q", "--probe", "SELECT count(*) = 40 FROM items"), { env });
  assertEquals(ok.code, 0, ok.stderr);
  assert((await listDir(to)).includes(name));
});

Deno.test("a probe holding two statements, or none, is refused with exit 2 naming it, before anything runs", async () => {
  await using dir = await tempDir();
  const archive = await placeBackup(dir.path, "app-2025-07-01T10-30-00Z-online.bck.gz", { rows: 10 });
  const before = await listDir(dir.path);
  const empty = `it is empty; a probe is one SQL query returning one row whose first value is true, ` +
    `e.g. "SELECT count(*) > 0 FROM users"`;
  const cases: [string, string][] = [
    [
      "SELECT 1; SELECT 0",
      `error: Invalid --probe "SELECT 1; SELECT 0": it holds more than one statement (after the first comes ` +
      `"SELECT 0"), and only one would run; give each statement as a probe of its own`,
    ],
    ["", `error: Invalid --probe "": ${empty}`],
    ["   ", `error: Invalid --probe "   ": ${empty}`],
    ["-- nothing\n;", `error: Invalid --probe "-- nothing\\n;": ${empty}`],
  ];
  for (const [probe, expected] of cases) {
    for (const command of [["verify", archive], ["restore", archive, "--to", dir.join("r.db")]]) {
      const out = await sqlbk([...command, `--probe=${probe}`, "--probe", "SELECT 1"]);
      assertEquals(out.code, 2, out.stderr);
      assertEquals(out.stderr, `${expected}\n`);
    }
  }
  assertEquals(await listDir(dir.path), before); // nothing ran: no lock, no copy, no restore
  // A trailing semicolon or comment, and a ";" inside a string or a quoted name, are one statement.
  const ok = await sqlbk([
    "verify",
    archive,
    "--probe",
    "SELECT count(*) = 10 FROM items; -- ten rows\n",
    "--probe",
    `SELECT ';' = ';' AS "a;b" /* ; */;;`,
  ]);
  assertEquals(ok.code, 0, ok.stderr);
  // The same rules for the config's "probes": an empty entry and a two-statement entry name it.
  const config = dir.join("probes.toml");
  for (
    const [toml, expected] of [
      [`probes = ["SELECT 1", ""]`, `invalid "probes" entry 2 "": ${empty}`],
      [
        `probes = ["SELECT 1; DELETE FROM items"]`,
        `invalid "probes" entry 1 "SELECT 1; DELETE FROM items": it holds more than one statement`,
      ],
    ]
  ) {
    await Deno.writeTextFile(config, `${toml}\n`);
    const out = await sqlbk(["verify", archive, "-c", config]);
    assertEquals(out.code, 2, out.stderr);
    assertStringIncludes(out.stderr, `error: ${config}: ${expected}`);
    assertEquals(out.stderr.trim().split("\n").length, 1, out.stderr);
  }
  // The library refuses it too (runProbes is what pull and restore call).
  await assertRejects(() => runProbes(archive, ["SELECT 1; SELECT 0"]), ConfigError, "more than one statement");
});
