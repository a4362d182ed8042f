/**
 * Issue 10, point 13: messages that mislead. The max-duration error counts every restart
 * of a copy (not only drops in the page count); a `backup_dir` that is a dangling symlink
 * or not writable exits 2 naming the path; `pages_per_step = 100.0` is refused; a zero
 * `pull --timeout` is refused however it is written.
 */

import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "./support/assert.ts";
import { listDir, makeDatabase, run, sqlbk, tempDir } from "./support/db.ts";
import { Database } from "../src/sqlite/database.ts";
import { BackupTimeoutError, onlineBackup } from "../src/strategies/online.ts";
import { parseConfig } from "../src/config.ts";
import { ConfigError } from "../src/errors.ts";
import { timeoutFlag } from "../cli/commands/pull.ts";

Deno.test("the max_duration error counts the restarts of a copy that a writer restarts on every commit", async () => {
  await using dir = await tempDir();
  const source = dir.join("app.db");
  await makeDatabase(source, { rows: 2_000, journal: "delete" });
  // Another connection commits after every step (from the progress callback), so every
  // step after the first finds the source changed: the copy restarts on each, however
  // slowly this machine runs, and the count is known.
  const app = new Database(source, { mode: "readwrite" });
  let commits = 0;
  let steps = 0;
  let err: Error;
  try {
    app.exec("CREATE TABLE IF NOT EXISTS ticks(n INTEGER)");
    err = await assertRejects(
      () =>
        onlineBackup(source, dir.join(".snap.db"), {
          pagesPerStep: 1,
          sleepIntervalMs: 10,
          maxDurationMs: 1500,
          onProgress: () => {
            steps++;
            app.exec(`INSERT INTO ticks VALUES (${++commits})`);
          },
        }),
      BackupTimeoutError,
    );
  } finally {
    app.close();
  }
  assert(steps >= 3, `only ${steps} steps ran`);
  const restarts = Number(/\((\d+) restarts/.exec(err.message)?.[1]);
  // The old count stayed at 0 (the page count never dropped); every step after the first restarted.
  assert(restarts >= steps - 2, `${restarts} restarts in ${steps} steps: ${err.message}`);
});

Deno.test("a backup_dir that is a dangling symlink exits 2 naming it and its target", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("app.db"), { rows: 10 });
  await Deno.symlink(dir.join("gone"), dir.join("backups"));
  const out = await sqlbk(["backup", "app.db"], { cwd: dir.path });
  assertEquals(out.code, 2, out.stderr);
  assertMatch(
    out.stderr,
    /^error: .*Invalid "backup_dir" "\.\/backups": it is a symbolic link to ".*gone", which does not exist/,
  );
  assertEquals(out.stderr.trim().split("\n").length, 1, out.stderr);
});

Deno.test("a backup_dir that cannot be written exits 2 naming it, also when its lock file exists from before", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("app.db"), { rows: 10 });
  const backups = dir.join("backups");
  const first = await sqlbk(["backup", "app.db", "-d", backups, "-q"], { cwd: dir.path });
  assertEquals(first.code, 0, first.stderr);
  const before = await listDir(backups);
  // Root ignores permission bits: make it read-only with a read-only bind mount instead.
  const root = (await run("id", ["-u"])).stdout.trim() === "0";
  if (root) {
    const bind = await run("mount", ["--bind", backups, backups]);
    assertEquals(bind.code, 0, bind.stderr);
    const ro = await run("mount", ["-o", "remount,bind,ro", backups]);
    assertEquals(ro.code, 0, ro.stderr);
  } else {
    await Deno.chmod(backups, 0o555);
  }
  try {
    await new Promise((r) => setTimeout(r, 1000)); // a new second: a new name
    const out = await sqlbk(["backup", "app.db", "-d", backups], { cwd: dir.path });
    assertEquals(out.code, 2, out.stderr);
    assertMatch(
      out.stderr,
      /error: .*Invalid "backup_dir" ".*backups": cannot write there \((permission denied|read-only file system)\)/,
    );
    assertEquals(out.stderr.split("\n").filter((l) => l.startsWith("error:")).length, 1, out.stderr);
  } finally {
    if (root) await run("umount", [backups]);
    else await Deno.chmod(backups, 0o755);
  }
  assertEquals(await listDir(backups), before);
});

Deno.test("integer keys refuse TOML floats such as pages_per_step = 100.0", async () => {
  for (const [key, value] of [["pages_per_step", "100.0"], ["keep_last", "7.0"], ["compression_level", "6e0"]]) {
    const err = assertThrows(() => parseConfig(`source_path = "app.db"\n${key} = ${value}\n`), ConfigError);
    assertMatch(err.message, new RegExp(`invalid "${key}" .*expected a whole number written without a decimal point`));
  }
  const err = assertThrows(
    () => parseConfig(`[databases.a]\nsource_path = "a.db"\npages_per_step = 100.0\n`),
    ConfigError,
  );
  assertMatch(err.message, /invalid "pages_per_step" in \[databases\.a\]/);
  assertEquals(parseConfig(`source_path = "app.db"\npages_per_step = 100\n`).databases[0].pagesPerStep, 100);
  await using dir = await tempDir();
  await Deno.writeTextFile(dir.join("c.toml"), `source_path = "app.db"\npages_per_step = 100.0\n`);
  const out = await sqlbk(["backup", "--config", dir.join("c.toml")]);
  assertEquals(out.code, 2, out.stderr);
  assertMatch(out.stderr, /^error: .*invalid "pages_per_step" 100/);
});

Deno.test("pull --timeout 0 is refused like 0s; positive values in either spelling are accepted", async () => {
  for (const value of ["0", "0s", "0.0", "0ms"]) {
    assertThrows(() => timeoutFlag(value), ConfigError, "it must be more than 0");
  }
  assertEquals([timeoutFlag("5"), timeoutFlag("5s"), timeoutFlag("1.5")], [5000, 5000, 1500]);
  await using dir = await tempDir();
  for (const value of ["0", "0s"]) {
    const out = await sqlbk(["pull", "backup@127.0.0.1:/srv", "--to", join(dir.path, "p"), "--timeout", value]);
    assertEquals(out.code, 2, out.stderr);
    assertMatch(out.stderr, new RegExp(`^error: Invalid --timeout "${value}": it must be more than 0`));
  }
});
