import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "./support/assert.ts";
import { makeDatabase, sqlite3, tempDir } from "./support/db.ts";
import { jobRows, TIMESTAMP, ts, wholeSecond } from "./support/queue.ts";
import { ClaimLostError, formatTimestamp, JOB_QUEUE_SCHEMA, JobQueue, nextSlot, parseTimestamp } from "../src/queue.ts";
import { ConfigError } from "../src/errors.ts";
import { SqliteError } from "../src/sqlite/error.ts";

async function queueDb(dir: { join(...p: string[]): string }): Promise<string> {
  const db = dir.join("app.db");
  await makeDatabase(db, { rows: 10 });
  await sqlite3(db, JOB_QUEUE_SCHEMA);
  return db;
}

Deno.test("JOB_QUEUE_SCHEMA creates restinpieces' job_queue columns, defaults and indexes", async () => {
  await using dir = await tempDir();
  const db = await queueDb(dir);
  const cols = await sqlite3(
    db,
    `SELECT name || '|' || type || '|' || "notnull" || '|' || coalesce(dflt_value, 'NULL') || '|' || pk
    FROM pragma_table_info('job_queue') ORDER BY cid;`,
  );
  assertEquals(cols.split("\n"), [
    "id|INTEGER|0|NULL|1",
    "job_type|TEXT|1|''|0",
    "payload|TEXT|1|''|0",
    "payload_extra|TEXT|1|''|0",
    "status|TEXT|1|'pending'|0",
    "attempts|INTEGER|1|0|0",
    "max_attempts|INTEGER|1|0|0",
    "created_at|TEXT|1|strftime('%Y-%m-%dT%H:%M:%SZ', 'now')|0",
    "updated_at|TEXT|1|strftime('%Y-%m-%dT%H:%M:%SZ', 'now')|0",
    "scheduled_for|TEXT|1|''|0",
    "locked_by|TEXT|1|''|0",
    "locked_at|TEXT|1|''|0",
    "completed_at|TEXT|1|''|0",
    "last_error|TEXT|1|''|0",
    "recurrent|BOOLEAN|1|FALSE|0",
    "interval|TEXT|1|''|0",
  ]);
  const indexes = await sqlite3(
    db,
    `SELECT name || '|' || "unique" FROM pragma_index_list('job_queue') ORDER BY name;`,
  );
  assertEquals(indexes.split("\n"), [
    "idx_job_queue_status_id|0",
    "idx_job_unique|1",
    "sqlite_autoindex_job_queue_1|1",
  ]);
  assertEquals(
    await sqlite3(db, `SELECT group_concat(name) FROM pragma_index_info('idx_job_queue_status_id');`),
    "status,id",
  );
  assertEquals(
    await sqlite3(db, `SELECT group_concat(name) FROM pragma_index_info('idx_job_unique');`),
    "payload,job_type",
  );
  // The defaults produce the queue's timestamp shape.
  await sqlite3(db, `INSERT INTO job_queue (job_type) VALUES ('x');`);
  const [row] = await jobRows(db);
  assertMatch(row.created_at, TIMESTAMP);
  assertEquals(row.recurrent, 0);
});

Deno.test("insertBackupJob() writes the row the Go insert-job tool writes, column by column", async () => {
  await using dir = await tempDir();
  const db = await queueDb(dir);
  using queue = JobQueue.open(db);
  const before = wholeSecond();
  const { job } = await queue.insertBackupJob({
    intervalMs: 90 * 60_000,
    scheduledFor: new Date("2030-01-02T05:04:03.900+02:00"),
  });
  const rows = await jobRows(db);
  assertEquals(rows.length, 1);
  const r = rows[0];
  assertEquals(r.id, job.id);
  assertEquals(
    { ...r, created_at: "", updated_at: "" },
    {
      id: job.id,
      job_type: "db_backup",
      payload: "{}",
      payload_extra: "",
      status: "pending",
      attempts: 0,
      max_attempts: 0,
      created_at: "",
      updated_at: "",
      scheduled_for: "2030-01-02T03:04:03Z",
      locked_by: "",
      locked_at: "",
      completed_at: "",
      last_error: "",
      recurrent: 1,
      interval: "1h30m0s",
    },
  );
  assertMatch(r.created_at, TIMESTAMP);
  assertEquals(r.created_at, r.updated_at);
  assert(Date.parse(r.created_at) >= before && Date.parse(r.created_at) <= Date.now());
  assertEquals(await sqlite3(db, "SELECT typeof(recurrent), typeof(attempts) FROM job_queue;"), "integer|integer");
});

Deno.test("insertBackupJob() names the existing job instead of a constraint error, and replace swaps it", async () => {
  await using dir = await tempDir();
  const db = await queueDb(dir);
  using queue = JobQueue.open(db);
  const { job } = await queue.insertBackupJob({
    intervalMs: 86_400_000,
    scheduledFor: new Date("2030-01-01T03:00:00Z"),
  });
  const err = await assertRejects(() => queue.insertBackupJob({ intervalMs: 3_600_000 }), ConfigError);
  assertMatch(err.message, new RegExp(`row id ${job.id}, interval 24h0m0s, next run 2030-01-01T03:00:00Z`));
  assertMatch(err.message, /--replace/);
  const { job: second, replaced } = await queue.insertBackupJob({ intervalMs: 3_600_000, replace: true });
  assertEquals(replaced.map((r) => r.id), [job.id]);
  const rows = await jobRows(db);
  assertEquals(rows.map((r) => [r.id, r.interval]), [[second.id, "1h0m0s"]]);
});

Deno.test("insertBackupJob() rejects intervals under a second or with fractions of a second", async () => {
  await using dir = await tempDir();
  const db = await queueDb(dir);
  using queue = JobQueue.open(db);
  await assertRejects(() => queue.insertBackupJob({ intervalMs: 500 }), ConfigError, "at least 1s");
  await assertRejects(() => queue.insertBackupJob({ intervalMs: 1500 }), ConfigError, "whole seconds");
  assertEquals(await jobRows(db), []);
});

Deno.test("claim() and complete() produce exactly the completed row and the next run's row", async () => {
  await using dir = await tempDir();
  const db = await queueDb(dir);
  using queue = JobQueue.open(db);
  const slot = wholeSecond() - 5_000;
  const { job } = await queue.insertBackupJob({ intervalMs: 3_600_000, scheduledFor: new Date(slot) });
  await sqlite3(
    db,
    `UPDATE job_queue SET payload_extra = '{"note":"x"}', max_attempts = 4 WHERE id = ${job.id};
    INSERT INTO job_queue (job_type, payload, scheduled_for) VALUES ('email_verification', '{"u":1}', '2000-01-01T00:00:00Z');`,
  );
  const appRowBefore = (await jobRows(db, "job_type = 'email_verification'"))[0];

  const claim = await queue.claim({ workerId: "host-a:42", leaseMs: 60_000 });
  assert(claim);
  assertEquals(claim.job.id, job.id);
  assertEquals(claim.reclaimedFrom, null);
  const claimed = (await jobRows(db, `id = ${job.id}`))[0];
  assertEquals([claimed.status, claimed.locked_by, claimed.attempts], ["processing", "host-a:42", 1]);
  assertMatch(claimed.locked_at, TIMESTAMP);
  assertEquals(claimed.updated_at, claimed.locked_at);
  assertEquals(await queue.claim({ workerId: "host-b:43", leaseMs: 60_000 }), null, "nothing else is due");

  const done = await queue.complete(claim.job);
  assertEquals(done.skipped, 0);
  const [completed, next] = await jobRows(db, "job_type = 'db_backup'");
  assertEquals(completed.status, "completed");
  assertMatch(completed.completed_at, TIMESTAMP);
  assertEquals(completed.updated_at, completed.completed_at);
  assertEquals([completed.locked_at, completed.last_error, completed.locked_by], ["", "", "host-a:42"]);
  const nextSlotText = ts(slot + 3_600_000);
  assertEquals({ ...next, id: 0, created_at: "", updated_at: "" }, {
    id: 0,
    job_type: "db_backup",
    payload: `{"scheduled_for":"${nextSlotText}"}`,
    payload_extra: '{"note":"x"}',
    status: "pending",
    attempts: 0,
    max_attempts: 4,
    created_at: "",
    updated_at: "",
    scheduled_for: nextSlotText,
    locked_by: "",
    locked_at: "",
    completed_at: "",
    last_error: "",
    recurrent: 1,
    interval: "1h0m0s",
  });
  assertEquals(next.created_at, completed.completed_at);
  assertEquals(done.next?.id, next.id);
  // The app's own job was never touched.
  assertEquals((await jobRows(db, "job_type = 'email_verification'"))[0], appRowBefore);
});

Deno.test("complete() after missed intervals schedules the first future slot of the grid and counts the skipped runs", async () => {
  await using dir = await tempDir();
  const db = await queueDb(dir);
  using queue = JobQueue.open(db);
  const now = wholeSecond();
  const slot = now - 3.5 * 3_600_000;
  await queue.insertBackupJob({ intervalMs: 3_600_000, scheduledFor: new Date(slot) });
  const claim = await queue.claim({ workerId: "w:1", leaseMs: 60_000 });
  assert(claim);
  const done = await queue.complete(claim.job, { now: new Date(now) });
  assertEquals(done.skipped, 3);
  assertEquals(done.next?.scheduledFor, ts(slot + 4 * 3_600_000));
  assertEquals((await jobRows(db))[1].payload, `{"scheduled_for":"${ts(slot + 4 * 3_600_000)}"}`);
});

Deno.test("nextSlot() keeps the payload's grid when a retry moved scheduled_for", () => {
  const now = new Date("2025-07-01T03:10:00Z");
  assertEquals(
    nextSlot({
      scheduledFor: "2025-07-01T03:04:00Z",
      payload: '{"scheduled_for":"2025-07-01T03:00:00Z"}',
      interval: "24h0m0s",
    }, now),
    { slot: "2025-07-02T03:00:00Z", skipped: 0 },
  );
  assertEquals(
    nextSlot(
      { scheduledFor: "2025-07-01T03:00:00Z", payload: "{}", interval: "15m0s" },
      new Date("2025-07-01T04:00:00Z"),
    ),
    { slot: "2025-07-01T04:15:00Z", skipped: 4 },
  );
});

Deno.test("fail() records the error, retries with exponential backoff and stops after max_attempts", async () => {
  await using dir = await tempDir();
  const db = await queueDb(dir);
  using queue = JobQueue.open(db);
  const t0 = wholeSecond();
  const { job } = await queue.insertBackupJob({ intervalMs: 86_400_000, scheduledFor: new Date(t0 - 1000) });
  await sqlite3(db, `UPDATE job_queue SET max_attempts = 3 WHERE id = ${job.id};`);
  const opts = { workerId: "w:1", leaseMs: 600_000 };

  let claim = await queue.claim({ ...opts, now: new Date(t0) });
  assert(claim);
  let r = await queue.fail(claim.job, new Error("disk full"), { now: new Date(t0) });
  assertEquals([r.delayMs, r.retryAt], [30_000, ts(t0 + 30_000)]);
  let row = (await jobRows(db))[0];
  assertEquals(
    [row.status, row.attempts, row.last_error, row.locked_at, row.updated_at, row.scheduled_for],
    ["failed", 1, "disk full", "", ts(t0), ts(t0 + 30_000)],
  );
  assertEquals(await queue.claim({ ...opts, now: new Date(t0 + 29_000) }), null, "not due before the backoff");

  claim = await queue.claim({ ...opts, now: new Date(t0 + 30_000) });
  assert(claim);
  assertEquals(claim.job.attempts, 2);
  r = await queue.fail(claim.job, new Error("disk still full"), { now: new Date(t0 + 30_000) });
  assertEquals([r.delayMs, r.retryAt], [60_000, ts(t0 + 90_000)]);

  claim = await queue.claim({ ...opts, now: new Date(t0 + 90_000) });
  assert(claim);
  r = await queue.fail(claim.job, new Error("gave up"), { now: new Date(t0 + 90_000) });
  assertEquals(r.retryAt, null);
  row = (await jobRows(db))[0];
  assertEquals([row.status, row.attempts, row.last_error], ["failed", 3, "gave up"]);
  assertEquals(await queue.claim({ ...opts, now: new Date(t0 + 86_400_000 * 10) }), null, "max_attempts used up");
  assertEquals((await jobRows(db)).length, 1, "no next run was scheduled");
});

Deno.test("fail() caps the backoff of a recurrent job at its interval", async () => {
  await using dir = await tempDir();
  const db = await queueDb(dir);
  using queue = JobQueue.open(db);
  const t0 = wholeSecond();
  await queue.insertBackupJob({ intervalMs: 60_000, scheduledFor: new Date(t0) });
  await sqlite3(db, `UPDATE job_queue SET attempts = 9;`);
  const claim = await queue.claim({ workerId: "w", leaseMs: 60_000, now: new Date(t0) });
  assert(claim);
  const r = await queue.fail(claim.job, new Error("x"), { now: new Date(t0) });
  assertEquals(r.delayMs, 60_000);
});

Deno.test("a row left in processing is reclaimed only after the lease, and the old claim is lost", async () => {
  await using dir = await tempDir();
  const db = await queueDb(dir);
  using a = JobQueue.open(db);
  using b = JobQueue.open(db);
  const t0 = wholeSecond();
  await a.insertBackupJob({ intervalMs: 3_600_000, scheduledFor: new Date(t0 - 1000) });
  const first = await a.claim({ workerId: "dead:1", leaseMs: 10_000, now: new Date(t0) });
  assert(first);
  assertEquals(await b.claim({ workerId: "alive:2", leaseMs: 10_000, now: new Date(t0 + 9_000) }), null);
  const second = await b.claim({ workerId: "alive:2", leaseMs: 10_000, now: new Date(t0 + 10_000) });
  assert(second);
  assertEquals(second.reclaimedFrom, { lockedBy: "dead:1", lockedAt: ts(t0) });
  assertEquals(second.job.attempts, 2);
  await assertRejects(() => a.complete(first.job), ClaimLostError, `by "alive:2"`);
  await b.complete(second.job);
  const rows = await jobRows(db);
  assertEquals(rows.map((r) => r.status), ["completed", "pending"]);
});

Deno.test("a row past the lease with max_attempts used up is marked failed, not run again", async () => {
  await using dir = await tempDir();
  const db = await queueDb(dir);
  using queue = JobQueue.open(db);
  const t0 = wholeSecond();
  await queue.insertBackupJob({ intervalMs: 3_600_000, scheduledFor: new Date(t0 - 1000) });
  await sqlite3(db, `UPDATE job_queue SET max_attempts = 1;`);
  assert(await queue.claim({ workerId: "dead:1", leaseMs: 5_000, now: new Date(t0) }));
  const expired: number[] = [];
  const again = await queue.claim({
    workerId: "w:2",
    leaseMs: 5_000,
    now: new Date(t0 + 6_000),
    onExpired: (rows) => expired.push(...rows.map((r) => r.id)),
  });
  assertEquals(again, null);
  assertEquals(expired, [1]);
  const [row] = await jobRows(db);
  assertEquals([row.status, row.locked_at], ["failed", ""]);
  assertMatch(row.last_error, /dead:1 stopped responding/);
});

Deno.test("release() sets an interrupted row back to pending without counting the attempt", async () => {
  await using dir = await tempDir();
  const db = await queueDb(dir);
  using queue = JobQueue.open(db);
  const slot = wholeSecond() - 2000;
  await queue.insertBackupJob({ intervalMs: 3_600_000, scheduledFor: new Date(slot) });
  const claim = await queue.claim({ workerId: "w:1", leaseMs: 60_000 });
  assert(claim);
  await queue.release(claim.job);
  const [row] = await jobRows(db);
  assertEquals(
    [row.status, row.attempts, row.locked_by, row.locked_at, row.scheduled_for],
    ["pending", 0, "", "", ts(slot)],
  );
  assert(await queue.claim({ workerId: "w:2", leaseMs: 60_000 }), "it runs again at once");
});

Deno.test("two connections racing for one due row: exactly one claims it", async () => {
  await using dir = await tempDir();
  const db = await queueDb(dir);
  using a = JobQueue.open(db);
  using b = JobQueue.open(db);
  for (let i = 0; i < 10; i++) {
    await a.insertBackupJob({ intervalMs: 3_600_000, scheduledFor: new Date(wholeSecond() - 1000), replace: true });
    const claims = await Promise.all([
      a.claim({ workerId: "a", leaseMs: 60_000 }),
      b.claim({ workerId: "b", leaseMs: 60_000 }),
    ]);
    assertEquals(claims.filter((c) => c !== null).length, 1, `round ${i}`);
  }
});

Deno.test("JobQueue.open() and requireTable() fail with clear errors", async () => {
  await using dir = await tempDir();
  const missing = dir.join("nope.db");
  let err = assertThrows(() => JobQueue.open(missing), ConfigError);
  assertMatch(err.message, /no such file/);
  const plain = dir.join("plain.db");
  await makeDatabase(plain, { rows: 1 });
  using queue = JobQueue.open(plain);
  err = assertThrows(() => queue.requireTable(), ConfigError);
  assertMatch(err.message, /Table "job_queue" not found .*--create-schema/);
  const text = dir.join("text.db");
  await Deno.writeTextFile(text, "this is not a database, just some text that is long enough".repeat(100));
  err = assertThrows(() => JobQueue.open(text), ConfigError);
  assertMatch(err.message, /not a SQLite database/);
});

Deno.test("formatTimestamp() and parseTimestamp() use the queue's UTC second format", () => {
  assertEquals(formatTimestamp(new Date("2025-07-01T10:30:00.999Z")), "2025-07-01T10:30:00Z");
  assertEquals(parseTimestamp("2025-07-01T12:30:00+02:00")?.toISOString(), "2025-07-01T10:30:00.000Z");
  assertEquals(parseTimestamp("2025-07-01T10:30:00.5Z")?.toISOString(), "2025-07-01T10:30:00.500Z");
  assertEquals(parseTimestamp("2025-02-30T10:30:00Z"), null);
  assertEquals(parseTimestamp("2025-07-01 10:30"), null);
  assertEquals(parseTimestamp("yesterday"), null);
});

Deno.test("claim() waits on timers while another process holds the write lock, up to the busy timeout", async () => {
  await using dir = await tempDir();
  const db = await queueDb(dir);
  await sqlite3(db, "PRAGMA journal_mode=WAL;");
  using queue = JobQueue.open(db, { busyTimeoutMs: 5_000 });
  await queue.insertBackupJob({ intervalMs: 3_600_000, scheduledFor: new Date(wholeSecond() - 1000) });
  const holder = new Deno.Command("sqlite3", { args: [db], stdin: "piped", stdout: "piped", stderr: "piped" }).spawn();
  const w = holder.stdin.getWriter();
  await w.write(
    new TextEncoder().encode("BEGIN IMMEDIATE;\nINSERT INTO notes (note) VALUES ('held');\n.print locked\n"),
  );
  const reader = holder.stdout.getReader();
  await reader.read(); // "locked": the other process holds the write lock now
  try {
    using impatient = JobQueue.open(db, { busyTimeoutMs: 300 });
    const t0 = performance.now();
    await assertRejects(() => impatient.claim({ workerId: "w:1", leaseMs: 60_000 }), SqliteError, "locked");
    assert(performance.now() - t0 >= 250);
    // The event loop keeps running while the patient queue waits.
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const claiming = queue.claim({ workerId: "w:2", leaseMs: 60_000 });
    await new Promise((r) => setTimeout(r, 500));
    await w.write(new TextEncoder().encode("COMMIT;\n"));
    const claim = await claiming;
    clearInterval(ticker);
    assert(claim, "claimed once the lock was released");
    assert(ticks >= 20, `${ticks} ticks while waiting`);
  } finally {
    await w.close();
    reader.releaseLock();
    await holder.stdout.cancel();
    await holder.stderr.cancel();
    await holder.status;
  }
});
