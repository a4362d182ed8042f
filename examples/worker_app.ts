/**
 * A small Deno app that runs sqlbk's backup worker in-process, beside its own work, and
 * shows that its event loop stays responsive while a backup runs: a timer that should
 * fire every 10 ms records how late it fires, and the app keeps writing to its database.
 *
 * Demo (makes a database in a temp dir, schedules a backup due now, exits after it):
 *
 *   deno run --allow-ffi --allow-read --allow-write --allow-env --allow-sys=hostname examples/worker_app.ts
 *
 * With your own app database (holding job_queue) and config, running until Ctrl-C:
 *
 *   deno run --allow-ffi --allow-read --allow-write --allow-env --allow-sys=hostname \
 *     examples/worker_app.ts app.db sqlbk.toml
 *
 * @module
 */

import { join } from "node:path";
import { Database, JobQueue, loadConfig, type Logger, parseConfig, runWorker, textLogger } from "../mod.ts";

const TICK_MS = 10;

/** Measures event-loop lag: how late a 10 ms interval timer fires. */
function lagMeter() {
  let expected = performance.now() + TICK_MS;
  let maxLag = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxLag = Math.max(maxLag, now - expected);
    expected = now + TICK_MS;
    ticks++;
  }, TICK_MS);
  return {
    reset() {
      maxLag = 0;
      ticks = 0;
    },
    get maxLag() {
      return maxLag;
    },
    get ticks() {
      return ticks;
    },
    stop: () => clearInterval(timer),
  };
}

async function demoSetup(rows: number): Promise<{ dbPath: string; configText: string; cleanup: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "sqlbk-worker-app-" });
  const dbPath = join(dir, "app.db");
  const db = new Database(dbPath, { mode: "create" });
  try {
    db.exec(`PRAGMA journal_mode=WAL;
      CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, at TEXT NOT NULL, body TEXT NOT NULL);`);
    const insert = db.prepare("INSERT INTO events (at, body) VALUES (?, ?)");
    db.exec("BEGIN");
    const body = "x".repeat(400);
    for (let i = 0; i < rows; i++) insert.run([new Date().toISOString(), body]);
    db.exec("COMMIT");
    insert.finalize();
  } finally {
    db.close();
  }
  // The job_queue table and the backup job, due now, as `sqlbk insert-job` would write them.
  const queue = JobQueue.open(dbPath);
  try {
    await queue.createSchema();
    await queue.insertBackupJob({ intervalMs: 3_600_000 });
  } finally {
    queue.close();
  }
  const configText = [
    `source_path = ${JSON.stringify(dbPath)}`,
    `backup_dir = ${JSON.stringify(join(dir, "backups"))}`,
    `strategy = "online"`,
    `pages_per_step = 64`,
    `sleep_interval = "1ms"`,
    "",
  ].join("\n");
  return { dbPath, configText, cleanup: () => Deno.remove(dir, { recursive: true }) };
}

if (import.meta.main) {
  const [dbArg, configArg] = Deno.args;
  const demo = dbArg === undefined;
  const rows = Number(Deno.env.get("WORKER_APP_ROWS") ?? 100_000);
  const setup = demo ? await demoSetup(rows) : null;
  const dbPath = setup?.dbPath ?? dbArg;
  const config = setup ? parseConfig(setup.configText, { origin: "demo config" }) : await loadConfig(configArg);

  const controller = new AbortController();
  Deno.addSignalListener("SIGINT", () => controller.abort());
  const meter = lagMeter();

  // The app's own work: it keeps writing to its database while backups run.
  const appDb = new Database(dbPath, { mode: "readwrite" });
  let written = 0;
  const writer = setInterval(() => {
    appDb.run("INSERT INTO events (at, body) VALUES (?, ?)", [new Date().toISOString(), "tick"]);
    written++;
  }, 50);

  let started = 0;
  const logger: Logger = {
    log(record) {
      if (record.event === "backup.progress") return;
      textLogger.log(record);
      if (record.event === "job.start") {
        meter.reset();
        written = 0;
        started = performance.now();
      }
      if (record.event === "job.done" || record.event === "job.failed") {
        console.log(
          `backup job took ${Math.round(performance.now() - started)} ms; during it the event loop ran ` +
            `${meter.ticks} ticks of ${TICK_MS} ms with a max lag of ${meter.maxLag.toFixed(1)} ms, ` +
            `and the app wrote ${written} rows`,
        );
        if (demo) controller.abort();
      }
    },
  };

  try {
    await runWorker({ dbPath, config, pollMs: 1_000, logger, signal: controller.signal });
  } finally {
    clearInterval(writer);
    meter.stop();
    appDb.close();
    await setup?.cleanup();
  }
}
