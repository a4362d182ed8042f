import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { join } from "node:path";
import { runBackup } from "../src/job.ts";
import { onlineBackup } from "../src/strategies/online.ts";
import { vacuumBackup } from "../src/strategies/vacuum.ts";
import { AlreadyExistsError } from "../src/fs.ts";
import { applyRetention } from "../src/retention.ts";
import { describe, listDir, makeDatabase, run, sqlite3, tempDir } from "./support/db.ts";
import { startWriter } from "./support/writer.ts";

/** Checks a published backup with the system tools; returns the restored database path. */
async function checkPublished(backupDir: string, file: string, restoreTo: string): Promise<void> {
  const path = join(backupDir, file);
  assertEquals((await run("gzip", ["-t", path])).code, 0, "gzip -t accepts the archive");
  const sums = await run("sha256sum", ["-c", `.${file}.sha256`], { cwd: backupDir });
  assertEquals(sums.code, 0, `sha256sum -c: ${sums.stdout}${sums.stderr}`);
  const out = await new Deno.Command("gzip", { args: ["-dc", path], stdout: "piped" }).output();
  await Deno.writeFile(restoreTo, out.stdout);
  assertEquals(await sqlite3(restoreTo, "PRAGMA integrity_check;"), "ok");
  // One self-contained file: journal mode DELETE, header bytes 18-19 say "rollback".
  assertEquals(await sqlite3(restoreTo, "PRAGMA journal_mode;"), "delete");
  assertEquals([out.stdout[18], out.stdout[19]], [1, 1]);
}

for (const strategy of ["online", "vacuum"] as const) {
  for (const journal of ["wal", "delete"] as const) {
    Deno.test(`runBackup() with ${strategy} on a ${journal}-mode database publishes a sound archive`, async () => {
      await using dir = await tempDir();
      const source = dir.join("app.db");
      await makeDatabase(source, { journal, rows: 3000 });
      // Leave uncheckpointed changes in the WAL, which the backup must include.
      await sqlite3(source, "PRAGMA wal_autocheckpoint=0; INSERT INTO notes (note) VALUES ('in the wal');");
      const start = new Date("2025-07-01T10:30:00Z");
      const result = await runBackup({ sourcePath: source, backupDir: dir.join("backups"), strategy }, {
        startTime: start,
      });
      assertEquals(result.file, `app-2025-07-01T10-30-00Z-${strategy}.bck.gz`);
      assertEquals(result.path, join(dir.join("backups"), result.file));
      assertEquals(result.strategy, strategy);
      assertEquals(result.restarts, 0);
      assert(result.pages > 10);
      assertEquals(result.bytes, (await Deno.stat(result.path)).size);
      assertEquals(await listDir(dir.join("backups")), [`.${result.file}.sha256`, ".sqlbk.lock", result.file]);
      await checkPublished(dir.join("backups"), result.file, dir.join("restored.db"));
      assertEquals(await describe(dir.join("restored.db")), await describe(source));
    });
  }
}

Deno.test("onlineBackup() finishes with zero restarts while another process commits to a WAL source", async () => {
  await using dir = await tempDir();
  const source = dir.join("busy.db");
  await makeDatabase(source, { journal: "wal", rows: 20000 });
  const writer = await startWriter(source, { intervalMs: 2 });
  let result;
  let stats;
  try {
    // Small steps and a pause between them: the copy lasts well over a second however loaded
    // the machine is, so the writer commits many times while it runs.
    result = await onlineBackup(source, dir.join("snap.db"), { pagesPerStep: 2, sleepIntervalMs: 5 });
  } finally {
    stats = await writer.stop();
  }
  assertEquals(result.restarts, 0);
  assertEquals(result.sourceJournalMode, "wal");
  assert(stats.commits >= 20, `the writer committed only ${stats.commits} times during the backup`);
  assertEquals(stats.errors, 0, "the writer was never refused");
  assertEquals(await sqlite3(dir.join("snap.db"), "PRAGMA integrity_check;"), "ok");
  assertEquals(await sqlite3(dir.join("snap.db"), "SELECT count(*) FROM items;"), "20000");
});

Deno.test("onlineBackup() on a rollback-journal source under writes finishes or stops at max_duration, leaving nothing", async () => {
  await using dir = await tempDir();
  const source = dir.join("busy.db");
  await makeDatabase(source, { journal: "delete", rows: 20000 });
  const writer = await startWriter(source, { intervalMs: 2 });
  let outcome: string;
  try {
    const result = await onlineBackup(source, dir.join("snap.db"), {
      pagesPerStep: 20,
      sleepIntervalMs: 2,
      maxDurationMs: 1500,
    });
    assertEquals(await sqlite3(dir.join("snap.db"), "PRAGMA integrity_check;"), "ok");
    outcome = `finished after ${result.restarts} restarts`;
    await Deno.remove(dir.join("snap.db"));
  } catch (err) {
    assert(err instanceof Error && err.message.includes("max_duration 1.5s"), String(err));
    outcome = "stopped";
  } finally {
    await writer.stop();
  }
  assert(outcome.length > 0);
  assertEquals((await listDir(dir.path)).filter((n) => n.startsWith("snap")), []);
});

Deno.test("both strategies work in a backup_dir whose path has a quote, spaces and non-ASCII letters", async () => {
  await using dir = await tempDir();
  const source = dir.join("it's a db.sqlite");
  await makeDatabase(source, { rows: 200 });
  const backupDir = dir.join("Sauvegardes d'été ✓");
  for (const strategy of ["online", "vacuum"] as const) {
    const result = await runBackup({ sourcePath: source, backupDir, strategy });
    assertEquals(result.file.startsWith("it's a db-"), true, result.file);
    await checkPublished(backupDir, result.file, dir.join(`restored-${strategy}.db`));
  }
});

Deno.test("a cancelled backup publishes nothing and removes its temp files", async () => {
  await using dir = await tempDir();
  const source = dir.join("app.db");
  await makeDatabase(source, { rows: 5000 });
  const backupDir = dir.join("backups");
  for (const strategy of ["online", "vacuum"] as const) {
    const controller = new AbortController();
    const promise = runBackup({ sourcePath: source, backupDir, strategy, pagesPerStep: 1, sleepInterval: "1ms" }, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === "snapshot" && p.done >= 5) controller.abort(new Error("cancelled by the test"));
        if (p.phase === "compress") controller.abort(new Error("cancelled by the test"));
      },
    });
    await assertRejects(() => promise, Error, "cancelled by the test");
    assertEquals(await listDir(backupDir), [".sqlbk.lock"], strategy);
  }
});

Deno.test("vacuumBackup() is interrupted by its signal", async () => {
  await using dir = await tempDir();
  const source = dir.join("app.db");
  await makeDatabase(source, { rows: 20000, payload: 400 });
  const controller = new AbortController();
  controller.abort(new Error("stop"));
  await assertRejects(() => vacuumBackup(source, dir.join("snap.db"), { signal: controller.signal }), Error, "stop");
  const late = new AbortController();
  setTimeout(() => late.abort(new Error("late stop")), 5);
  const outcome = await vacuumBackup(source, dir.join("snap2.db"), { signal: late.signal }).then(
    () => "finished",
    (e) => (e instanceof Error && e.message === "late stop" ? "interrupted" : String(e)),
  );
  assert(outcome === "finished" || outcome === "interrupted", outcome);
  if (outcome === "interrupted") assertEquals((await listDir(dir.path)).filter((n) => n.startsWith("snap2")), []);
});

Deno.test("a backup refuses to overwrite a backup made in the same second", async () => {
  await using dir = await tempDir();
  const source = dir.join("app.db");
  await makeDatabase(source, { rows: 100 });
  const backupDir = dir.join("backups");
  const startTime = new Date("2025-07-01T10:30:00Z");
  const first = await runBackup({ sourcePath: source, backupDir, strategy: "vacuum" }, { startTime });
  const before = await Deno.readFile(first.path);
  await sqlite3(source, "INSERT INTO notes (note) VALUES ('changed');");
  await assertRejects(
    () => runBackup({ sourcePath: source, backupDir, strategy: "vacuum" }, { startTime }),
    AlreadyExistsError,
    "Refusing to overwrite",
  );
  assertEquals(await Deno.readFile(first.path), before);
  assertEquals(await listDir(backupDir), [`.${first.file}.sha256`, ".sqlbk.lock", first.file]);
});

Deno.test("keep_last deletes only this database's oldest backups and their sidecars", async () => {
  await using dir = await tempDir();
  const source = dir.join("app.db");
  await makeDatabase(source, { rows: 100 });
  const backupDir = dir.join("backups");
  await Deno.mkdir(backupDir);
  const foreign = [
    "app2-2020-01-01T00-00-00Z-online.bck.gz", // another database whose name starts the same
    "app-20200101T000000Z-online.bck.gz", // another tool's grammar
    "app-2020-01-01T00-00-00Z-online.bck.gz.notes",
    "README.txt",
  ];
  for (const name of foreign) await Deno.writeTextFile(join(backupDir, name), "not ours");
  const files: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await runBackup({ sourcePath: source, backupDir, strategy: "vacuum", keepLast: 2 }, {
      startTime: new Date(Date.UTC(2025, 6, 1, 10, i)),
    });
    files.push(r.file);
    if (i === 3) assertEquals(r.deleted, [files[1]]);
  }
  const expected = [".sqlbk.lock", ...foreign, files[2], `.${files[2]}.sha256`, files[3], `.${files[3]}.sha256`].sort();
  assertEquals(await listDir(backupDir), expected);
});

Deno.test("applyRetention() never deletes the protected backup even when newer ones exist", async () => {
  await using dir = await tempDir();
  const names = [
    "app-2025-07-01T10-00-00Z-online.bck.gz",
    "app-2025-07-02T10-00-00Z-online.bck.gz",
    "app-2025-07-03T10-00-00Z-online.bck.gz",
  ];
  for (const name of names) await Deno.writeTextFile(dir.join(name), "x");
  const deleted = await applyRetention(dir.path, "app", { keepLast: 1, protect: names[0] });
  assertEquals(deleted, [names[1], names[2]]);
  assertEquals(await listDir(dir.path), [names[0]]);
  assertEquals(await applyRetention(dir.path, "app", { keepLast: 0 }), []);
});
