/**
 * Issue 8: the worker runs on the app's own database (job_queue in app.db, source_path =
 * app.db) while the app writes, and the app's database stays sound: every commit the app
 * made is there, PRAGMA integrity_check is ok, every job completed. Real processes, real
 * files: the worker is the `sqlbk run` CLI, the app is python3 with its own SQLite.
 */

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
import { jobRows, Running, ts, until, wholeSecond } from "./support/queue.ts";
import { APP_TABLE, startAppWriter } from "./support/app_writer.ts";
import { Database } from "../src/sqlite/database.ts";
import { runBackup } from "../src/job.ts";
import { runWorker } from "../src/worker.ts";
import { silentLogger } from "../src/logger.ts";
import { parseConfig } from "../src/config.ts";

function _toml(db: string, backups: string, strategy: string, extra = ""): string {
  return `source_path = ${JSON.stringify(db)}\nbackup_dir = ${JSON.stringify(backups)}\nstrategy = "${strategy}"\n` +
    `pages_per_step = 20\nsleep_interval = "1ms"\n${extra}`;
}

async function _app(dir: TempDir, journal: "wal" | "delete", strategy: string, interval = "1s") {
  const db = dir.join("app.db");
  const backups = dir.join("backups");
  const config = dir.join("sqlbk.toml");
  await makeDatabase(db, { journal, rows: 2000 });
  await sqlite3(db, APP_TABLE);
  await Deno.writeTextFile(config, _toml(db, backups, strategy));
  const out = await sqlbk(["insert-job", "--dbpath", db, "--create-schema", "--interval", interval]);
  assertEquals(out.code, 0, out.stderr);
  return { db, backups, config };
}

/** The app's rows of `writer`, by sequence number, read with the sqlite3 tool. */
async function _rows(db: string, writer: string): Promise<number[]> {
  const out = await sqlite3(db, `SELECT seq FROM app_rows WHERE writer = '${writer}' ORDER BY seq;`);
  return out === "" ? [] : out.split("\n").map(Number);
}

for (const journal of ["wal", "delete"] as const) {
  for (const strategy of ["online", "vacuum"]) {
    for (const mode of ["short", "long"] as const) {
      Deno.test(
        `sqlbk run on the app's own database keeps it sound while the app writes (${journal}, ${strategy}, ${mode}-lived connections)`,
        async () => {
          await using dir = await tempDir();
          const { db, backups, config } = await _app(dir, journal, strategy);
          await using worker = new Running(spawnSqlbk(["run", "--dbpath", db, "--config", config, "--poll", "1s"]));
          await worker.waitFor(/watching/);
          const app = await startAppWriter(db, "app", mode, journal.length * 7 + strategy.length + mode.length);
          let written;
          try {
            await until(
              async () => (await jobRows(db, "status = 'completed'")).length >= 10,
              120_000,
              () => `10 completed jobs; worker log:\n${worker.stderr}`,
            );
          } finally {
            written = await app.stop();
          }
          const status = await worker.stop("SIGTERM");
          assertEquals(status.code, 0, worker.stderr);
          assertEquals(await sqlite3(db, "PRAGMA integrity_check;"), "ok", worker.stderr);
          assertEquals(written.errors, [], "the app saw SQLite errors");
          assert(written.committed.length >= 5, `the app committed only ${written.committed.length} rows`);
          assertEquals(await _rows(db, "app"), written.committed, "rows the app committed are missing");
          const jobs = await jobRows(db);
          assertEquals(jobs.filter((j) => j.status === "failed" || j.last_error !== ""), [], worker.stderr);
          assert(jobs.filter((j) => j.status === "completed").length >= 10);
          // SIGTERM may interrupt a running job (it goes back to pending): that is the only error allowed.
          const errors = worker.stderr.split("\n").filter((l) =>
            / ERROR /.test(l) && !/Interrupted by a signal/.test(l)
          );
          assertEquals(errors, [], worker.stderr);
          assert(!/job \d+ failed/.test(worker.stderr), worker.stderr);
          const published = await archives(backups);
          assert(published.length >= 10, `only ${published.length} archives`);
          // The newest archive is sound too, checked with the real tools.
          const restored = dir.join("restored.db");
          const gz = await run("sh", ["-c", `gzip -dc "$0" > "$1"`, `${backups}/${published.at(-1)}`, restored]);
          assertEquals(gz.code, 0, gz.stderr);
          assertEquals(await sqlite3(restored, "PRAGMA integrity_check;"), "ok");
        },
      );
    }
  }
}

/** Whether this process holds a POSIX read lock on the file with inode `ino` (/proc/locks). */
async function _holdsReadLock(ino: number): Promise<boolean> {
  const locks = (await run("cat", ["/proc/locks"])).stdout; // Deno reads /proc only with --allow-all
  const re = new RegExp(`POSIX\\s+ADVISORY\\s+READ\\s+${Deno.pid}\\s+[0-9a-f]+:[0-9a-f]+:${ino}\\s`);
  return locks.split("\n").some((line) => re.test(line));
}

Deno.test("runBackup and runWorker in the app's own process keep its connection's locks and its data", async () => {
  await using dir = await tempDir();
  const { db, backups } = await _app(dir, "wal", "online");
  const ino = (await Deno.stat(db)).ino!;
  const app = new Database(db, { mode: "readwrite" });
  try {
    app.query("SELECT count(*) FROM app_rows");
    assert(await _holdsReadLock(ino), "the app's WAL connection holds a shared lock on app.db");
    for (const strategy of ["online", "vacuum"] as const) {
      await runBackup({ sourcePath: db, backupDir: backups, strategy, sleepInterval: "0s" });
      assert(await _holdsReadLock(ino), `runBackup (${strategy}) dropped the app's lock on app.db`);
      await new Promise((r) => setTimeout(r, 1000)); // one backup name per second
    }

    // The app writes from the same event loop while the worker runs beside it, and another
    // app process opens and closes its own connections.
    const controller = new AbortController();
    const committed: number[] = [];
    const loop = (async () => {
      for (let seq = 1; !controller.signal.aborted; seq++) {
        app.exec("BEGIN IMMEDIATE");
        app.run("INSERT INTO app_rows (writer, seq, body) VALUES ('inproc', ?, ?)", [seq, "x".repeat(seq % 7 * 300)]);
        app.exec("COMMIT");
        committed.push(seq);
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    const other = await startAppWriter(db, "other", "short", 3);
    const config = parseConfig(_toml(db, backups, "online"));
    const worker = runWorker({ dbPath: db, config, pollMs: 200, logger: silentLogger, signal: controller.signal });
    let written;
    try {
      await until(async () => (await jobRows(db, "status = 'completed'")).length >= 5, 60_000, () => "5 jobs");
    } finally {
      controller.abort();
      written = await other.stop();
    }
    const summary = await worker;
    await loop;
    assertEquals(summary.failed, 0);
    assert(summary.succeeded >= 5);
    assert(await _holdsReadLock(ino), "the worker dropped the app's lock on app.db");
    assertEquals(written.errors, []);
    assertEquals(await _rows(db, "other"), written.committed);
    assertEquals(await _rows(db, "inproc"), committed);
  } finally {
    app.close();
  }
  assertEquals(await sqlite3(db, "PRAGMA integrity_check;"), "ok");
});

/** A row in processing, locked by a worker that died `agoMs` ago. */
async function _orphan(db: string, agoMs: number): Promise<void> {
  const at = ts(Date.now() - agoMs);
  await sqlite3(
    db,
    `UPDATE job_queue SET status = 'processing', locked_by = 'dead:1', locked_at = '${at}', attempts = 1;`,
  );
}

Deno.test("a reclaimed job keeps the backup its dead worker published instead of taking a second", async () => {
  await using dir = await tempDir();
  const { db, backups, config } = await _app(dir, "wal", "vacuum", "1h");
  // The dead worker's attempt: its backup was published (with its sidecar) ...
  const published = await sqlbk(["backup", "--config", config, "-q"]);
  assertEquals(published.code, 0, published.stderr);
  const before = await listDir(backups);
  // ... and it died before recording the job as completed.
  await _orphan(db, 5_000);
  const out = await sqlbk(["run", "--dbpath", db, "--config", config, "--once", "--lease", "1s"]);
  assertEquals(out.code, 0, out.stderr);
  assertMatch(out.stderr, /already published by an earlier attempt/);
  assertEquals(await listDir(backups), before, "no second backup of the slot");
  const rows = await jobRows(db);
  assertEquals(rows[0].status, "completed");
  assertEquals(rows.length, 2); // the next run is scheduled
});

Deno.test("a sidecar left without its archive by a killed run is swept; an archive always has its sidecar", async () => {
  await using dir = await tempDir();
  const { db, backups, config } = await _app(dir, "wal", "vacuum", "1h");
  const first = await sqlbk(["backup", "--config", config, "-q"]);
  assertEquals(first.code, 0, first.stderr);
  // The state a kill between the sidecar and the archive leaves: the sidecar alone.
  const orphan = `app-${
    new Date(wholeSecond() - 60_000).toISOString().slice(0, 19).replaceAll(":", "-")
  }Z-vacuum.bck.gz`;
  // The sidecar is hidden (`.<archive>.sha256`); an earlier version's `<archive>.sha256` is swept alike.
  const older = orphan.replace("Z-vacuum", "Z-online");
  await Deno.writeTextFile(`${backups}/.${orphan}.sha256`, `${"0".repeat(64)}  ${orphan}\n`);
  await Deno.writeTextFile(`${backups}/${older}.sha256`, `${"0".repeat(64)}  ${older}\n`);
  await new Promise((r) => setTimeout(r, 1000));
  const second = await sqlbk(["backup", "--config", config]);
  assertEquals(second.code, 0, second.stderr);
  const names = await listDir(backups);
  assert(!names.includes(`.${orphan}.sha256`), names.join(" "));
  assert(!names.includes(`${older}.sha256`), names.join(" "));
  for (const archive of names.filter((n) => n.endsWith(".bck.gz"))) assert(names.includes(`.${archive}.sha256`));
  assertEquals(await sqlite3(db, "PRAGMA integrity_check;"), "ok");
});

for (
  const [phase, pattern] of [
    ["at the claim", /job \d+ started/],
    ["while copying pages", /snapshot \d+%/],
    ["between the check and compressing", /snapshot passed quick_check/],
    ["between publishing and recording the job", /published app-/],
  ] as const
) {
  Deno.test(`a worker killed ${phase} leaves no partial file, and the next run backs up the slot exactly once`, async () => {
    await using dir = await tempDir();
    const db = dir.join("app.db");
    const backups = dir.join("backups");
    const config = dir.join("sqlbk.toml");
    await makeDatabase(db, { rows: 20_000, payload: 200 });
    // Slow enough (1 page a step) that every phase lasts long enough to be seen.
    await Deno.writeTextFile(config, _toml(db, backups, "online").replace("pages_per_step = 20", "pages_per_step = 4"));
    const ins = await sqlbk(["insert-job", "--dbpath", db, "--create-schema", "--interval", "1h"]);
    assertEquals(ins.code, 0, ins.stderr);
    const first = new Running(spawnSqlbk(["run", "--dbpath", db, "--config", config, "--poll", "1s"]));
    await first.waitFor(pattern, 60_000);
    await first.stop("SIGKILL");
    await new Promise((r) => setTimeout(r, 1_100)); // the dead worker's lease (1s below) runs out
    const next = await sqlbk(["run", "--dbpath", db, "--config", config, "--once", "--lease", "1s"]);
    assertEquals(next.code, 0, `${first.stderr}\n---\n${next.stderr}`);
    const rows = await jobRows(db);
    assertEquals(rows[0].status, "completed", next.stderr);
    const names = await listDir(backups);
    const archives = names.filter((n) => n.endsWith(".bck.gz"));
    assertEquals(archives.length, 1, names.join(" "));
    assertEquals(
      names.filter((n) => n !== ".sqlbk.lock" && n !== `.${archives[0]}.sha256` && !n.startsWith("app-")),
      [],
      "leftovers",
    );
    assert(names.includes(`.${archives[0]}.sha256`));
    const verify = await sqlbk(["verify", `${backups}/${archives[0]}`]);
    assertEquals(verify.code, 0, verify.stderr);
    assertEquals(await sqlite3(db, "PRAGMA integrity_check;"), "ok");
  });
}

Deno.test("a worker whose database is deleted or replaced stops with one error and exit 1", async () => {
  for (const what of ["deleted", "replaced"]) {
    await using dir = await tempDir();
    const { db, config } = await _app(dir, "wal", "vacuum", "1h");
    await sqlite3(db, `UPDATE job_queue SET scheduled_for = '${ts(Date.now() + 3_600_000)}';`);
    await using worker = new Running(spawnSqlbk(["run", "--dbpath", db, "--config", config, "--poll", "200ms"]));
    await worker.waitFor(/watching/);
    if (what === "deleted") {
      for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(db + suffix).catch(() => {});
    } else {
      const other = dir.join("other.db");
      await makeDatabase(other, { rows: 10 });
      await sqlbk(["insert-job", "--dbpath", other, "--create-schema", "--interval", "1s"]);
      await Deno.rename(other, db);
    }
    const status = await Promise.race([
      worker.status(),
      new Promise<null>((r) => setTimeout(() => r(null), 20_000)),
    ]);
    assert(status !== null, `the worker kept running after its database was ${what}:\n${worker.stderr}`);
    assertEquals(status.code, 1, worker.stderr);
    const errors = worker.stderr.split("\n").filter((l) => l.startsWith("error:"));
    assertEquals(errors.length, 1, worker.stderr);
    assertMatch(errors[0], new RegExp(`job queue database ".*app\\.db" was ${what}`));
    assert(!/job \d+ (started|completed)/.test(worker.stderr), `it went on running jobs:\n${worker.stderr}`);
  }
});

Deno.test("sqlbk run --once exits 1 when the due job cannot be claimed (database locked), even with -q", async () => {
  await using dir = await tempDir();
  const { db, config } = await _app(dir, "delete", "vacuum", "1h");
  // Another process holds an exclusive lock for longer than the busy timeout.
  const holder = new Deno.Command("python3", {
    args: [
      "-c",
      `import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()`,
      db,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
  assertEquals((await reader.read()).value?.trim(), "locked");
  try {
    const out = await sqlbk(["run", "--dbpath", db, "--config", config, "--once", "-q"]);
    assertEquals(out.code, 1, out.stderr);
    assertMatch(out.stderr, /^error: .*(locked|SQLITE_BUSY)/);
  } finally {
    await holder.stdin.close();
    await holder.status;
    reader.releaseLock();
  }
  const rows = await jobRows(db);
  assertEquals(rows[0].status, "pending");
});

Deno.test("durations beyond 24.8 days behave as written: --max-duration 600h, --timeout 600h, --lease 2000h", async () => {
  await using dir = await tempDir();
  const { db, config } = await _app(dir, "wal", "online", "1h");
  const started = performance.now();
  for (const strategy of ["online", "vacuum"]) {
    const backup = await sqlbk(["backup", db, "-d", dir.join("b"), "-s", strategy, "--max-duration", "600h"]);
    assertEquals(backup.code, 0, backup.stderr);
    assert(!/TimeoutOverflow/.test(backup.stderr), backup.stderr);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const worker = await sqlbk([
    "run",
    "--dbpath",
    db,
    "--config",
    config,
    "--once",
    "--timeout",
    "600h",
    "--lease",
    "2000h",
  ]);
  assertEquals(worker.code, 0, worker.stderr);
  assert(!/TimeoutOverflow|job \d+ failed/.test(worker.stderr), worker.stderr);
  assertEquals((await jobRows(db))[0].status, "completed");
  assert(performance.now() - started < 60_000, "promptly");
});
