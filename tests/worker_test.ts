import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  archives,
  listDir,
  makeDatabase,
  run,
  spawnSqlbk,
  sqlbk,
  sqlite3,
  type TempDir,
  tempDir,
} from "./support/db.ts";
import { backupToml, jobRows, Running, TIMESTAMP, ts, until, wholeSecond } from "./support/queue.ts";
import { runWorker } from "../src/worker.ts";
import { silentLogger } from "../src/logger.ts";
import { parseConfig } from "../src/config.ts";

/** An app database with a db_backup job due `agoMs` ago, and a config file for it. */
async function setup(
  dir: TempDir,
  options: { rows?: number; payload?: number; slow?: boolean; interval?: string; agoMs?: number } = {},
) {
  const db = dir.join("app.db");
  const backups = dir.join("backups");
  const config = dir.join("sqlbk.toml");
  await makeDatabase(db, { rows: options.rows ?? 200, payload: options.payload ?? 100 });
  await Deno.writeTextFile(config, backupToml(db, backups, { slow: options.slow }));
  const slot = wholeSecond() - (options.agoMs ?? 5_000);
  const out = await sqlbk([
    "insert-job",
    "--dbpath",
    db,
    "--interval",
    options.interval ?? "1h",
    "--scheduled",
    new Date(slot).toISOString(),
    "--create-schema",
  ]);
  assertEquals(out.code, 0, out.stderr);
  return { db, backups, config, slot };
}

async function leftovers(dir: string): Promise<string[]> {
  try {
    return (await listDir(dir)).filter((n) => /\.snapshot$|\.tmp$|\.partial$/.test(n));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

/** Restores an archive with the real gzip tool and runs the real sqlite3 integrity check on it. */
async function assertSoundArchive(path: string, dir: TempDir, rows: number): Promise<void> {
  const restored = dir.join(`restored-${crypto.randomUUID().slice(0, 6)}.db`);
  const gz = await run("sh", ["-c", `gzip -dc "$0" > "$1"`, path, restored]);
  assertEquals(gz.code, 0, gz.stderr);
  assertEquals(await sqlite3(restored, "PRAGMA integrity_check;"), "ok");
  assertEquals(await sqlite3(restored, "SELECT count(*) FROM items;"), String(rows));
}

Deno.test("sqlbk run --once backs up a due job, completes it and schedules the next run", async () => {
  await using dir = await tempDir();
  const { db, backups, config, slot } = await setup(dir);
  const out = await sqlbk(["run", "--dbpath", db, "--config", config, "--once", "--worker-id", "test:1"]);
  assertEquals(out.code, 0, out.stderr);
  const files = await archives(backups);
  assertEquals(files.length, 1);
  await assertSoundArchive(dir.join("backups", files[0]), dir, 200);
  const [done, next] = await jobRows(db);
  assertEquals([done.status, done.attempts, done.locked_by, done.locked_at, done.last_error], [
    "completed",
    1,
    "test:1",
    "",
    "",
  ]);
  assertMatch(done.completed_at, TIMESTAMP);
  assertEquals([next.status, next.scheduled_for, next.payload, next.interval, next.attempts, next.recurrent], [
    "pending",
    ts(slot + 3_600_000),
    `{"scheduled_for":"${ts(slot + 3_600_000)}"}`,
    "1h0m0s",
    0,
    1,
  ]);
  assertMatch(out.stderr, /job 1 completed; next run .* \(job 2\)/);
  // Nothing is due any more: a second run does nothing.
  const again = await sqlbk(["run", "--dbpath", db, "--config", config, "--once"]);
  assertEquals(again.code, 0, again.stderr);
  assertEquals((await archives(backups)).length, 1);
  assertEquals((await jobRows(db)).length, 2);
});

Deno.test("sqlbk run --once exits 1 when the job fails and records the error with a backoff", async () => {
  await using dir = await tempDir();
  const { db, config } = await setup(dir);
  await Deno.writeTextFile(config, backupToml(dir.join("gone.db"), dir.join("backups")));
  const started = wholeSecond();
  const out = await sqlbk(["run", "--dbpath", db, "--config", config, "--once", "--backoff", "45s"]);
  assertEquals(out.code, 1, out.stderr);
  assertMatch(out.stderr, /job 1 failed \(attempt 1\): .*gone\.db.*no such file.*; retry at /);
  const rows = await jobRows(db);
  assertEquals(rows.length, 1, "no next run for a failed job");
  const [row] = rows;
  assertEquals([row.status, row.attempts, row.locked_at], ["failed", 1, ""]);
  assertMatch(row.last_error, /Invalid "source_path" ".*gone\.db": no such file/);
  const retry = Date.parse(row.scheduled_for) - Date.parse(row.updated_at);
  assertEquals(retry, 45_000);
  assert(Date.parse(row.updated_at) >= started);
});

Deno.test("sqlbk run fails with exit code 2 for a database without job_queue or a bad config", async () => {
  await using dir = await tempDir();
  const db = dir.join("plain.db");
  await makeDatabase(db, { rows: 1 });
  const config = dir.join("sqlbk.toml");
  await Deno.writeTextFile(config, backupToml(db, dir.join("backups")));
  let out = await sqlbk(["run", "--dbpath", db, "--config", config, "--once"]);
  assertEquals(out.code, 2);
  assertMatch(out.stderr, /^error: Table "job_queue" not found in .*--create-schema"\n$/);
  await Deno.writeTextFile(config, `source_path = "x.db"\nstrategy = "fast"\n`);
  out = await sqlbk(["run", "--dbpath", db, "--config", config, "--once"]);
  assertEquals(out.code, 2);
  assertMatch(out.stderr, /invalid "strategy" "fast"/);
  out = await sqlbk(["run", "--dbpath", db, "--once"]);
  assertEquals(out.code, 2);
  assertMatch(out.stderr, /Missing --config FILE/);
  out = await sqlbk(["run", "--dbpath", db, "--config", config, "--poll", "soon"]);
  assertEquals(out.code, 2);
  assertMatch(out.stderr, /Invalid --poll "soon"/);
});

Deno.test("a worker killed with SIGKILL mid-job leaves its row to be reclaimed after the lease and backed up again", async () => {
  await using dir = await tempDir();
  const rows = 20_000;
  const { db, backups, config } = await setup(dir, { rows, payload: 200, slow: true });
  const args = ["run", "--dbpath", db, "--config", config, "--poll", "100ms", "--lease", "5s"];
  const victim = new Running(spawnSqlbk([...args, "--worker-id", "victim:1"]));
  try {
    await until(async () => (await jobRows(db))[0].status === "processing" && (await leftovers(backups)).length > 0);
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await victim.stop("SIGKILL");
  }
  assertEquals(await archives(backups), [], "nothing published by the killed worker");
  let [row] = await jobRows(db);
  assertEquals([row.status, row.locked_by], ["processing", "victim:1"]);

  // Fast settings for the rescue run; within the lease the row is left alone.
  await Deno.writeTextFile(config, backupToml(db, backups));
  const early = await sqlbk(["run", "--dbpath", db, "--config", config, "--once", "--lease", "5s"]);
  assertEquals(early.code, 0, early.stderr);
  assertEquals((await jobRows(db))[0].status, "processing", "not reclaimed within the lease");

  // After the lease it is reclaimed and backed up.
  const lockedAt = Date.parse((await jobRows(db))[0].locked_at);
  await new Promise((r) => setTimeout(r, Math.max(0, lockedAt + 6_000 - Date.now())));
  const rescue = await sqlbk(["run", "--dbpath", db, "--config", config, "--once", "--lease", "5s"]);
  assertEquals(rescue.code, 0, rescue.stderr);
  assertMatch(rescue.stderr, /job 1 reclaimed from worker victim:1: its lease expired/);
  [row] = await jobRows(db);
  assertEquals([row.status, row.attempts], ["completed", 2]);
  assertEquals((await jobRows(db)).map((r) => r.status), ["completed", "pending"]);
  const files = await archives(backups);
  assertEquals(files.length, 1);
  await assertSoundArchive(dir.join("backups", files[0]), dir, rows);
  assertEquals(await leftovers(backups), [], "the killed run's temp files were swept");
});

Deno.test("two workers on one database with one due job make exactly one backup", async () => {
  await using dir = await tempDir();
  const db = dir.join("app.db");
  const backups = dir.join("backups");
  const config = dir.join("sqlbk.toml");
  await makeDatabase(db, { rows: 2000 });
  await Deno.writeTextFile(config, backupToml(db, backups));
  const created = await sqlbk([
    "insert-job",
    "--dbpath",
    db,
    "--scheduled",
    "2099-01-01T00:00:00Z",
    "--interval",
    "1h",
    "--create-schema",
  ]);
  assertEquals(created.code, 0, created.stderr);
  const workers = [1, 2].map((n) =>
    new Running(spawnSqlbk(["run", "--dbpath", db, "--config", config, "--poll", "100ms", "--worker-id", `w:${n}`]))
  );
  try {
    for (const w of workers) await w.waitFor(/watching/);
    // Make the job due for both at once.
    await sqlite3(db, `UPDATE job_queue SET scheduled_for = '${ts(wholeSecond())}';`);
    await until(async () => (await jobRows(db)).length === 2 && (await archives(backups)).length > 0);
    await new Promise((r) => setTimeout(r, 1_000)); // give a second backup the chance to show up
  } finally {
    const codes = await Promise.all(workers.map((w) => w.stop("SIGTERM")));
    assertEquals(codes.map((c) => c.code), [0, 0], workers.map((w) => w.stderr).join("\n---\n"));
  }
  assertEquals((await archives(backups)).length, 1);
  const rows = await jobRows(db);
  assertEquals(rows.map((r) => [r.status, r.attempts]), [["completed", 1], ["pending", 0]]);
  const ran = workers.filter((w) => /job 1 started/.test(w.stderr));
  assertEquals(ran.length, 1, "only one worker started the job");
  assertEquals(rows[0].locked_by, ran[0] === workers[0] ? "w:1" : "w:2");
});

Deno.test("SIGTERM during a slow online backup: exit 0 within seconds, row pending again, nothing partial", async () => {
  await using dir = await tempDir();
  const { db, backups, config, slot } = await setup(dir, { rows: 20_000, payload: 200, slow: true });
  const worker = new Running(spawnSqlbk(["run", "--dbpath", db, "--config", config, "--poll", "100ms"]));
  let elapsed = 0;
  let status: Deno.CommandStatus;
  try {
    await until(async () => (await jobRows(db))[0].status === "processing" && (await leftovers(backups)).length > 0);
    await worker.waitFor(/snapshot 10%/, 20_000);
    const t0 = performance.now();
    worker.child.kill("SIGTERM");
    status = await worker.status();
    elapsed = performance.now() - t0;
  } finally {
    await worker.stop();
  }
  assertEquals(status.code, 0, worker.stderr);
  assert(elapsed < 5_000, `exited after ${elapsed} ms`);
  assertMatch(worker.stderr, /job 1 interrupted; it is pending again/);
  const rows = await jobRows(db);
  assertEquals(rows.length, 1);
  const [row] = rows;
  assertEquals(
    [row.status, row.attempts, row.locked_by, row.locked_at, row.scheduled_for, row.last_error],
    ["pending", 0, "", "", ts(slot), ""],
  );
  assertEquals(await archives(backups), []);
  assertEquals(await leftovers(backups), []);
});

Deno.test("runWorker() in-process: the signal stops it, and once runs only what is due", async () => {
  await using dir = await tempDir();
  const { db, backups, config } = await setup(dir);
  const cfg = parseConfig(await Deno.readTextFile(config));
  const summary = await runWorker({ dbPath: db, config: cfg, once: true, logger: silentLogger, workerId: "lib:1" });
  assertEquals([summary.ran, summary.succeeded, summary.failed, summary.interrupted], [1, 1, 0, 0]);
  assertEquals(summary.results.map((r) => r.database), ["app"]);
  assertEquals((await archives(backups)).length, 1);

  const controller = new AbortController();
  const t0 = performance.now();
  const running = runWorker({
    dbPath: db,
    config: cfg,
    pollMs: 60_000,
    logger: silentLogger,
    signal: controller.signal,
  });
  setTimeout(() => controller.abort(), 200);
  const idle = await running;
  assert(performance.now() - t0 < 2_000, "a sleeping worker wakes on abort");
  assertEquals(idle.ran, 0);
});

Deno.test("sqlbk run --timeout aborts a slow job between steps and records it as failed", async () => {
  await using dir = await tempDir();
  const { db, backups, config } = await setup(dir, { rows: 20_000, payload: 200, slow: true });
  const t0 = performance.now();
  const out = await sqlbk(["run", "--dbpath", db, "--config", config, "--once", "--timeout", "1s"]);
  assertEquals(out.code, 1, out.stderr);
  assert(performance.now() - t0 < 8_000);
  const [row] = await jobRows(db);
  assertEquals(row.status, "failed");
  assertMatch(row.last_error, /Job 1 did not finish within the timeout 1s/);
  assertEquals(await archives(backups), []);
  assertEquals(await leftovers(backups), []);
});

Deno.test("runWorker() beside an app writing synchronously to the same database from the same event loop: no lock waits", async () => {
  await using dir = await tempDir();
  const { db, backups, config } = await setup(dir, { interval: "1s", agoMs: 1_000 });
  const cfg = parseConfig(await Deno.readTextFile(config));
  const { Database } = await import("../src/sqlite/database.ts");
  const app = new Database(db, { mode: "readwrite", busyTimeoutMs: 5_000 });
  let writes = 0;
  let slowest = 0;
  let failure: unknown = null;
  const writer = setInterval(() => {
    const t = performance.now();
    try {
      app.run("INSERT INTO notes (note) VALUES (?)", ["app write"]);
      writes++;
    } catch (err) {
      failure = err;
    }
    slowest = Math.max(slowest, performance.now() - t);
  }, 1);
  const controller = new AbortController();
  const completed: number[] = [];
  const worker = runWorker({
    dbPath: db,
    config: cfg,
    pollMs: 100,
    signal: controller.signal,
    logger: { log: (r) => r.event === "job.done" && completed.push(Number(r.job)) },
  });
  try {
    await until(() => completed.length >= 2, 15_000, () => `completed ${completed}`);
  } finally {
    controller.abort();
    await worker;
    clearInterval(writer);
    app.close();
  }
  assertEquals(failure, null);
  assert(writes > 10, `${writes} app writes`);
  assert(slowest < 1_000, `an app write waited ${slowest} ms for a lock`);
  assert((await archives(backups)).length >= 1);
});

Deno.test("runWorker() with a custom handler passes the job and records its failure", async () => {
  await using dir = await tempDir();
  const { db } = await setup(dir);
  const seen: unknown[] = [];
  const summary = await runWorker({
    dbPath: db,
    once: true,
    logger: silentLogger,
    backoffMs: 5_000,
    handler: {
      handle(job, options) {
        seen.push({
          id: job.id,
          jobType: job.jobType,
          attempt: job.attempt,
          signal: options?.signal instanceof AbortSignal,
        });
        return Promise.reject(new Error("handler says no"));
      },
    },
  });
  assertEquals([summary.ran, summary.failed], [1, 1]);
  assertEquals(seen, [{ id: 1, jobType: "db_backup", attempt: 1, signal: true }]);
  const [row] = await jobRows(db);
  assertEquals([row.status, row.last_error], ["failed", "handler says no"]);
  assertEquals(Date.parse(row.scheduled_for) - Date.parse(row.updated_at), 5_000);
});
