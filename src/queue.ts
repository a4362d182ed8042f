/**
 * The `job_queue` table of restinpieces apps, as sqlbk reads and writes it: the schema,
 * inserting the recurrent `db_backup` job, claiming due backup rows atomically, and
 * recording success (with the next run), failure (with backoff) or an interrupted run.
 *
 * Every value keeps the Go server's formats: timestamps are UTC text
 * `YYYY-MM-DDTHH:MM:SSZ` (due-ness is compared as text), intervals are Go's canonical
 * duration text (`24h0m0s`), `recurrent` is 0/1, payloads are JSON text.
 *
 * @module
 */

import { Database } from "./sqlite/database.ts";
import { openAppDatabase } from "./app_db.ts";
import { SqliteError } from "./sqlite/error.ts";
import { SQLITE_BUSY, SQLITE_CONSTRAINT, SQLITE_LOCKED } from "./sqlite/constants.ts";
import { ConfigError, errorMessage } from "./errors.ts";
import { DurationError, formatDuration, parseDuration } from "./duration.ts";

/**
 * The job type of backup jobs; every other type belongs to the app and is never claimed.
 *
 * @example
 * ```ts
 * db.query("SELECT id FROM job_queue WHERE job_type = ?", [JOB_TYPE_DB_BACKUP]);
 * ```
 */
export const JOB_TYPE_DB_BACKUP = "db_backup";

/**
 * The `job_queue` schema of restinpieces apps, as `--create-schema` creates it.
 *
 * @example
 * ```ts
 * import { Database, JOB_QUEUE_SCHEMA } from "./mod.ts";
 * const db = new Database("app.db");
 * db.exec(JOB_QUEUE_SCHEMA);
 * db.close();
 * ```
 */
export const JOB_QUEUE_SCHEMA = `CREATE TABLE IF NOT EXISTS job_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_type TEXT NOT NULL DEFAULT '',
    payload TEXT NOT NULL DEFAULT '',
    payload_extra TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    scheduled_for TEXT NOT NULL DEFAULT '',
    locked_by TEXT NOT NULL DEFAULT '',
    locked_at TEXT NOT NULL DEFAULT '',
    completed_at TEXT NOT NULL DEFAULT '',
    last_error TEXT NOT NULL DEFAULT '',
    recurrent BOOLEAN NOT NULL DEFAULT FALSE,
    interval TEXT NOT NULL DEFAULT '',
    UNIQUE (payload, job_type)
);
CREATE INDEX IF NOT EXISTS idx_job_queue_status_id ON job_queue(status, id);
CREATE UNIQUE INDEX IF NOT EXISTS idx_job_unique ON job_queue (payload, job_type);
`;

/** A status of a `job_queue` row. */
export type JobStatus = "pending" | "processing" | "completed" | "failed";

/** One `job_queue` row, with the column values as stored. */
export interface QueueJob {
  /** `id`. */
  id: number;
  /** `job_type`, `db_backup` for backups. */
  jobType: string;
  /** `payload`: JSON text, `{}` or `{"scheduled_for":"..."}` for backups. */
  payload: string;
  /** `payload_extra`. */
  payloadExtra: string;
  /** `status`. */
  status: JobStatus;
  /** `attempts`: claims so far (a claim counts one). */
  attempts: number;
  /** `max_attempts`: 0 for no limit. */
  maxAttempts: number;
  /** `created_at`. */
  createdAt: string;
  /** `updated_at`. */
  updatedAt: string;
  /** `scheduled_for`: due when it is not after now. */
  scheduledFor: string;
  /** `locked_by`: the worker id that claimed the row. */
  lockedBy: string;
  /** `locked_at`: when it was claimed (or last renewed). */
  lockedAt: string;
  /** `completed_at`. */
  completedAt: string;
  /** `last_error`. */
  lastError: string;
  /** `recurrent`. */
  recurrent: boolean;
  /** `interval`: Go duration text. */
  interval: string;
}

/**
 * The claim on a job was lost: another worker reclaimed it, or the row was replaced or deleted.
 *
 * @example
 * ```ts
 * try {
 *   await queue.complete(claim.job);
 * } catch (err) {
 *   if (err instanceof ClaimLostError) console.error("another worker took the job over");
 * }
 * ```
 */
export class ClaimLostError extends Error {
  /** The error's name, `ClaimLostError`. */
  override name = "ClaimLostError";
}

/**
 * Formats a time as the queue stores it: UTC `YYYY-MM-DDTHH:MM:SSZ`, no fraction.
 *
 * @example
 * ```ts
 * formatTimestamp(new Date("2025-07-01T10:30:00.750Z")); // "2025-07-01T10:30:00Z"
 * ```
 */
export function formatTimestamp(date: Date | number): string {
  const d = typeof date === "number" ? new Date(date) : date;
  if (Number.isNaN(d.getTime())) throw new RangeError("Cannot format an invalid date");
  return `${d.toISOString().slice(0, 19)}Z`;
}

const _RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Parses an RFC 3339 time (`2025-07-01T10:30:00Z`, `2025-07-01T12:30:00+02:00`, fractions
 * allowed, as Go's `time.RFC3339` reads it). Returns null when the text is not one.
 *
 * @example
 * ```ts
 * parseTimestamp("2025-07-01T12:30:00+02:00")?.toISOString(); // "2025-07-01T10:30:00.000Z"
 * ```
 */
export function parseTimestamp(text: string): Date | null {
  const m = _RFC3339.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, , zone] = m;
  if (+mo < 1 || +mo > 12 || +d < 1 || +h > 23 || +mi > 59 || +s > 59) return null;
  // Reject impossible days in any zone (2025-04-31, 2025-02-29) instead of letting Date roll over.
  if (+d > new Date(Date.UTC(+y, +mo, 0)).getUTCDate()) return null;
  const offset = zone === "Z" || zone === "z" ? "Z" : zone;
  const date = new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}${m[7] ? `.${m[7].slice(0, 3).padEnd(3, "0")}` : ""}${offset}`);
  if (Number.isNaN(date.getTime())) return null;
  return date;
}

function _row(r: Record<string, unknown>): QueueJob {
  const num = (v: unknown) => (typeof v === "bigint" ? Number(v) : typeof v === "number" ? v : Number(v ?? 0));
  const str = (v: unknown) => (v === null || v === undefined ? "" : String(v));
  return {
    id: num(r.id),
    jobType: str(r.job_type),
    payload: str(r.payload),
    payloadExtra: str(r.payload_extra),
    status: str(r.status) as JobStatus,
    attempts: num(r.attempts),
    maxAttempts: num(r.max_attempts),
    createdAt: str(r.created_at),
    updatedAt: str(r.updated_at),
    scheduledFor: str(r.scheduled_for),
    lockedBy: str(r.locked_by),
    lockedAt: str(r.locked_at),
    completedAt: str(r.completed_at),
    lastError: str(r.last_error),
    recurrent: num(r.recurrent) !== 0 || r.recurrent === "TRUE" || r.recurrent === "true",
    interval: str(r.interval),
  };
}

/**
 * Whether an error is SQLITE_BUSY or SQLITE_LOCKED (the lock was held past the busy timeout).
 *
 * @example
 * ```ts
 * try { await queue.claim({ workerId: "w", leaseMs: 60_000 }); } catch (err) { if (!isBusy(err)) throw err; }
 * ```
 */
export function isBusy(err: unknown): boolean {
  return err instanceof SqliteError && (err.code === SQLITE_BUSY || err.code === SQLITE_LOCKED);
}

/** Options for {@link JobQueue.open}. */
export interface OpenQueueOptions {
  /** Create the database file when it does not exist. Default false. */
  create?: boolean;
  /** How long a statement waits for another connection's lock, in ms. Default 5000. */
  busyTimeoutMs?: number;
}

/** Options for {@link JobQueue.insertBackupJob}. */
export interface InsertJobOptions {
  /** The recurrence interval in ms; stored as Go canonical text. At least 1 s, whole seconds. Default 24 h. */
  intervalMs?: number;
  /** The first run. Default: now. */
  scheduledFor?: Date;
  /** Replace an existing `db_backup` job instead of refusing. Default false. */
  replace?: boolean;
  /** The current time (for `created_at`/`updated_at`). Default: now. */
  now?: Date;
}

/** What {@link JobQueue.complete} did. */
export interface CompleteResult {
  /** The row, now completed. */
  job: QueueJob;
  /** The next run's row, or null for a job that does not recur. */
  next: QueueJob | null;
  /** Runs of the interval grid skipped because they were already in the past. */
  skipped: number;
}

/** What {@link JobQueue.fail} did. */
export interface FailResult {
  /** The row, now failed. */
  job: QueueJob;
  /** When it runs again (the new `scheduled_for`), or null when max_attempts is used up. */
  retryAt: string | null;
  /** The backoff applied, in ms (0 when not retried). */
  delayMs: number;
}

/** Options for {@link JobQueue.fail}. */
export interface FailOptions {
  /** The first retry's delay; each further attempt doubles it. Default 30 s. */
  backoffMs?: number;
  /** The longest delay; a recurrent job's delay also never exceeds its interval. Default 1 h. */
  maxBackoffMs?: number;
  /** The current time. Default: now. */
  now?: Date;
}

/** Options for {@link JobQueue.claim}. */
export interface ClaimOptions {
  /** Written to `locked_by`. */
  workerId: string;
  /** A row left in processing whose `locked_at` is older than this is reclaimed. */
  leaseMs: number;
  /** The current time. Default: now. */
  now?: Date;
  /** Called with rows given up during the claim: left in processing past the lease with max_attempts used up. */
  onExpired?: (jobs: QueueJob[]) => void;
}

/** A claimed row, and whose lease it took over when it was reclaimed. */
export interface Claim {
  /** The row as claimed (status processing, attempts counted). */
  job: QueueJob;
  /** When the row was reclaimed from a worker whose lease expired: that worker's id and lock time. */
  reclaimedFrom: { lockedBy: string; lockedAt: string } | null;
}

const _SELECT = `SELECT id, job_type, payload, payload_extra, status, attempts, max_attempts, created_at,
  updated_at, scheduled_for, locked_by, locked_at, completed_at, last_error, recurrent, "interval"
  FROM job_queue`;

/**
 * The `db_backup` rows of one database's `job_queue`. Writes run in short `BEGIN IMMEDIATE`
 * transactions: while another connection holds the write lock, the queue waits on timers
 * (up to the busy timeout), never by blocking the JavaScript thread, and it never holds the
 * lock across an await, so a host app writing to the same database from the same event
 * loop cannot deadlock with it. Operations on one queue run one at a time.
 *
 * @example
 * ```ts
 * import { JobQueue } from "./mod.ts";
 * const queue = JobQueue.open("app.db");
 * try {
 *   const claim = await queue.claim({ workerId: "host:1", leaseMs: 7_200_000 });
 *   if (claim) await queue.complete(claim.job);
 * } finally {
 *   queue.close();
 * }
 * ```
 */
export class JobQueue {
  /** The connection (owned by the queue when made by {@link JobQueue.open}). */
  readonly db: Database;
  #owned: boolean;
  #busyTimeoutMs: number;
  #chain: Promise<unknown> = Promise.resolve();

  /**
   * Wraps an open connection; {@link close} leaves it open.
   * @param db a read-write connection to the app's database
   * @param options `busyTimeoutMs`: how long a write waits for another connection's lock (default 5000)
   */
  constructor(db: Database, options: { owned?: boolean; busyTimeoutMs?: number } = {}) {
    this.db = db;
    this.#owned = options.owned ?? false;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    db.setBusyTimeout(this.#busyTimeoutMs);
  }

  /**
   * Opens the app's database for the queue. A missing file (unless `create`), or a file
   * that is not a SQLite database, raises a {@link ConfigError} naming the path.
   *
   * @example
   * ```ts
   * const queue = JobQueue.open("app.db", { busyTimeoutMs: 10_000 });
   * ```
   */
  static open(path: string, options: OpenQueueOptions = {}): JobQueue {
    const db = openAppDatabase(path, {
      mode: options.create ? "create" : "readwrite",
      busyTimeoutMs: options.busyTimeoutMs,
    });
    return new JobQueue(db, { owned: true, busyTimeoutMs: options.busyTimeoutMs });
  }

  /** The database path. */
  get path(): string {
    return this.db.path;
  }

  /**
   * Whether the `job_queue` table exists.
   * @example
   * ```ts
   * if (!queue.hasTable()) queue.createSchema();
   * ```
   */
  hasTable(): boolean {
    return this.db.query("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'job_queue'").length > 0;
  }

  /**
   * Throws a {@link ConfigError} with a hint when `job_queue` does not exist.
   * @example
   * ```ts
   * queue.requireTable();
   * ```
   */
  requireTable(): void {
    if (!this.hasTable()) {
      throw new ConfigError(
        `Table "job_queue" not found in "${this.path}": is it the app's database? ` +
          `To create it, run "sqlbk insert-job --dbpath ${this.path} --interval 24h --create-schema"`,
      );
    }
  }

  /**
   * Creates `job_queue` and its indexes when missing ({@link JOB_QUEUE_SCHEMA}).
   * @example
   * ```ts
   * await queue.createSchema();
   * ```
   */
  createSchema(): Promise<void> {
    return this.#serial(() => this.#transaction(() => this.db.exec(JOB_QUEUE_SCHEMA)));
  }

  /**
   * The `db_backup` rows that are not completed (the active job, or a failed one), oldest first.
   * @example
   * ```ts
   * for (const job of queue.backupJobs()) console.log(job.id, job.interval, job.scheduledFor);
   * ```
   */
  backupJobs(): QueueJob[] {
    return this.db.query(`${_SELECT} WHERE job_type = ? AND status != 'completed' ORDER BY id`, [
      JOB_TYPE_DB_BACKUP,
    ]).map(_row);
  }

  /**
   * Reads one row by id.
   * @example
   * ```ts
   * const row = queue.get(1);
   * ```
   */
  get(id: number): QueueJob | null {
    const rows = this.db.query(`${_SELECT} WHERE id = ?`, [id]);
    return rows.length > 0 ? _row(rows[0]) : null;
  }

  /**
   * The earliest `scheduled_for` of a claimable `db_backup` row, or null.
   * @example
   * ```ts
   * const due = await queue.nextDue(); // "2025-07-02T03:00:00Z"
   * ```
   */
  async nextDue(): Promise<string | null> {
    const rows = await this.#serial(() =>
      Promise.resolve(this.#all(
        `SELECT min(scheduled_for) AS due FROM job_queue WHERE job_type = ? AND
          (status = 'pending' OR (status = 'failed' AND (max_attempts = 0 OR attempts < max_attempts)))`,
        [JOB_TYPE_DB_BACKUP],
      ))
    );
    const due = rows[0]?.due;
    return typeof due === "string" ? due : null;
  }

  /**
   * Inserts the recurrent backup job exactly as the Go `insert-job` tool does: job_type
   * `db_backup`, payload `{}`, attempts 0, max_attempts 0, recurrent 1, the interval as
   * Go canonical text, status pending. A second `db_backup` job raises a
   * {@link ConfigError} naming the existing row, unless `replace` removes it first.
   *
   * @example
   * ```ts
   * const { job } = await queue.insertBackupJob({ intervalMs: 86_400_000 });
   * console.log(job.id, job.interval); // 1 "24h0m0s"
   * ```
   */
  async insertBackupJob(options: InsertJobOptions = {}): Promise<{ job: QueueJob; replaced: QueueJob[] }> {
    const intervalMs = checkInterval(options.intervalMs ?? 86_400_000);
    const now = formatTimestamp(options.now ?? new Date());
    const scheduled = formatTimestamp(options.scheduledFor ?? options.now ?? new Date());
    return await this.#serial(() =>
      this.#transaction(() => {
        this.requireTable();
        const existing = this.db.query(
          `${_SELECT} WHERE job_type = ? AND (status != 'completed' OR payload = '{}') ORDER BY id`,
          [JOB_TYPE_DB_BACKUP],
        ).map(_row);
        if (existing.length > 0 && !options.replace) {
          const active = existing.filter((j) => j.status !== "completed");
          const e = active.at(-1) ?? existing.at(-1)!;
          const what = e.status === "completed"
            ? `a completed ${JOB_TYPE_DB_BACKUP} row (id ${e.id}) already uses payload {}`
            : `a ${JOB_TYPE_DB_BACKUP} job already exists: row id ${e.id}, interval ${e.interval || "(none)"}, ` +
              `${e.status === "failed" ? "failed" : "next run"} ${e.scheduledFor || "(now)"}, status ${e.status}`;
          throw new ConfigError(`Cannot insert the backup job into "${this.path}": ${what}; use --replace to swap it`);
        }
        for (const e of existing) this.db.run("DELETE FROM job_queue WHERE id = ?", [e.id]);
        const rows = this.#all(
          `INSERT INTO job_queue (job_type, payload, payload_extra, status, attempts, max_attempts, created_at,
            updated_at, scheduled_for, recurrent, "interval")
          VALUES (?, '{}', '', 'pending', 0, 0, ?, ?, ?, 1, ?) RETURNING *`,
          [JOB_TYPE_DB_BACKUP, now, now, scheduled, formatDuration(intervalMs)],
        );
        return { job: _row(rows[0]), replaced: existing };
      })
    );
  }

  /**
   * Atomically claims the next due `db_backup` row (pending and due; failed, due and with
   * attempts left; or processing with `locked_at` older than the lease): status processing,
   * `locked_by`, `locked_at`, attempts + 1. Two workers never claim the same row. Rows
   * past the lease with max_attempts used up are marked failed instead. Resolves null
   * when nothing is due.
   *
   * @example
   * ```ts
   * const claim = await queue.claim({ workerId: "web1:4242", leaseMs: 2 * 3_600_000 });
   * if (claim) console.log(`claimed row ${claim.job.id}`);
   * ```
   */
  claim(options: ClaimOptions): Promise<Claim | null> {
    const nowDate = options.now ?? new Date();
    const now = formatTimestamp(nowDate);
    const stale = formatTimestamp(nowDate.getTime() - Math.max(0, options.leaseMs));
    return this.#serial(() =>
      this.#transaction<Claim | null>(() => {
        const expired = (this.#all(
          `UPDATE job_queue SET status = 'failed', updated_at = ?, locked_at = '',
             last_error = 'the worker ' || locked_by || ' stopped responding (lease expired) and max_attempts is used up'
           WHERE job_type = ? AND status = 'processing' AND locked_at <= ? AND max_attempts > 0
             AND attempts >= max_attempts RETURNING *`,
          [now, JOB_TYPE_DB_BACKUP, stale],
        )).map(_row);
        const candidates = this.db.query(
          `${_SELECT} WHERE job_type = ? AND (
             (status = 'pending' AND scheduled_for <= ?)
             OR (status = 'failed' AND (max_attempts = 0 OR attempts < max_attempts) AND scheduled_for <= ?)
             OR (status = 'processing' AND locked_at <= ?))
           ORDER BY scheduled_for, id LIMIT 1`,
          [JOB_TYPE_DB_BACKUP, now, now, stale],
        ).map(_row);
        if (expired.length > 0) {
          try {
            options.onExpired?.(expired);
          } catch { /* a reporting callback never undoes the claim */ }
        }
        if (candidates.length === 0) return null;
        const c = candidates[0];
        const rows = this.#all(
          `UPDATE job_queue SET status = 'processing', locked_by = ?, locked_at = ?, updated_at = ?,
             attempts = attempts + 1 WHERE id = ? AND status = ? RETURNING *`,
          [options.workerId, now, now, c.id, c.status],
        );
        if (rows.length === 0) return null;
        return {
          job: _row(rows[0]),
          reclaimedFrom: c.status === "processing" ? { lockedBy: c.lockedBy, lockedAt: c.lockedAt } : null,
        };
      })
    );
  }

  /**
   * Renews the claim's `locked_at` so a long backup is not reclaimed while its worker is
   * alive. Updates `job.lockedAt`. Throws {@link ClaimLostError} when the claim is gone.
   *
   * @example
   * ```ts
   * await queue.heartbeat(claim.job);
   * ```
   */
  heartbeat(job: QueueJob, options: { now?: Date } = {}): Promise<void> {
    const now = formatTimestamp(options.now ?? new Date());
    return this.#serial(() =>
      this.#transaction(() => {
        this.#guarded(job, `UPDATE job_queue SET locked_at = ? WHERE ${_GUARD}`, [now], "renew the lease");
        job.lockedAt = now;
      })
    );
  }

  /**
   * Records a successful run in one `BEGIN IMMEDIATE` transaction: the row becomes
   * completed (`completed_at`, `updated_at` now, `locked_at` and `last_error` empty) and,
   * for a recurrent job, the next row is inserted: same job_type, payload_extra,
   * max_attempts, interval, recurrent 1, attempts 0, pending, `scheduled_for` = the
   * previous slot + interval (the first slot after now when runs were missed), payload
   * `{"scheduled_for":"<that time>"}`.
   *
   * @example
   * ```ts
   * const { next, skipped } = await queue.complete(claim.job);
   * console.log(next?.scheduledFor, skipped);
   * ```
   */
  complete(job: QueueJob, options: { now?: Date } = {}): Promise<CompleteResult> {
    const nowDate = options.now ?? new Date();
    const now = formatTimestamp(nowDate);
    return this.#serial(() =>
      this.#transaction(() => {
        const done = this.#guarded(
          job,
          `UPDATE job_queue SET status = 'completed', completed_at = ?, updated_at = ?, locked_at = '',
             last_error = '' WHERE ${_GUARD} RETURNING *`,
          [now, now],
          "mark it completed",
        );
        if (!job.recurrent) return { job: done, next: null, skipped: 0 };
        const { slot, skipped } = nextSlot(job, nowDate);
        const payload = JSON.stringify({ scheduled_for: slot });
        try {
          const rows = this.#all(
            `INSERT INTO job_queue (job_type, payload, payload_extra, status, attempts, max_attempts, created_at,
               updated_at, scheduled_for, recurrent, "interval")
             VALUES (?, ?, ?, 'pending', 0, ?, ?, ?, ?, 1, ?) RETURNING *`,
            [job.jobType, payload, job.payloadExtra, job.maxAttempts, now, now, slot, job.interval],
          );
          return { job: done, next: _row(rows[0]), skipped };
        } catch (err) {
          if (err instanceof SqliteError && err.code === SQLITE_CONSTRAINT) {
            const other = this.db.query(`SELECT id, status FROM job_queue WHERE payload = ? AND job_type = ?`, [
              payload,
              job.jobType,
            ])[0];
            throw new Error(
              `Cannot schedule the next run of job ${job.id} at ${slot}: row ${other?.id ?? "?"} (${
                other?.status ?? "?"
              }) already has payload ${payload}`,
              { cause: err },
            );
          }
          throw err;
        }
      })
    );
  }

  /**
   * Records a failed run: status failed, `updated_at` now, `locked_at` empty, `last_error`
   * the message. While attempts are left (max_attempts 0 means no limit) `scheduled_for`
   * moves forward by an exponential backoff so the row runs again; otherwise it stays failed.
   *
   * @example
   * ```ts
   * const { retryAt } = await queue.fail(claim.job, new Error("disk full"), { backoffMs: 30_000 });
   * ```
   */
  fail(job: QueueJob, error: unknown, options: FailOptions = {}): Promise<FailResult> {
    const nowDate = options.now ?? new Date();
    const now = formatTimestamp(nowDate);
    const message = errorMessage(error);
    const exhausted = job.maxAttempts > 0 && job.attempts >= job.maxAttempts;
    let delayMs = 0;
    let retryAt: string | null = null;
    if (!exhausted) {
      let cap = options.maxBackoffMs ?? 3_600_000;
      if (job.recurrent) {
        const interval = _intervalMs(job.interval);
        if (interval !== null) cap = Math.min(cap, interval);
      }
      const base = Math.max(1000, options.backoffMs ?? 30_000);
      delayMs = Math.max(1000, Math.min(cap, base * 2 ** Math.min(30, Math.max(0, job.attempts - 1))));
      retryAt = formatTimestamp(nowDate.getTime() + delayMs);
    }
    return this.#serial(() =>
      this.#transaction(() => {
        const row = this.#guarded(
          job,
          `UPDATE job_queue SET status = 'failed', updated_at = ?, locked_at = '', last_error = ?,
             scheduled_for = ? WHERE ${_GUARD} RETURNING *`,
          [now, message, retryAt ?? job.scheduledFor],
          "mark it failed",
        );
        return { job: row, retryAt, delayMs };
      })
    );
  }

  /**
   * Gives an interrupted run back: status pending, `locked_by`/`locked_at` empty, the
   * claim's attempt not counted, `scheduled_for` unchanged (so it runs again as soon as a
   * worker is back).
   *
   * @example
   * ```ts
   * await queue.release(claim.job);
   * ```
   */
  release(job: QueueJob, options: { now?: Date } = {}): Promise<QueueJob> {
    const now = formatTimestamp(options.now ?? new Date());
    return this.#serial(() =>
      this.#transaction(() =>
        this.#guarded(
          job,
          `UPDATE job_queue SET status = 'pending', updated_at = ?, locked_at = '', locked_by = '',
             attempts = max(0, attempts - 1) WHERE ${_GUARD} RETURNING *`,
          [now],
          "release it",
        )
      )
    );
  }

  /**
   * Closes the connection when the queue opened it.
   * @example
   * ```ts
   * queue.close();
   * ```
   */
  close(): void {
    if (this.#owned) this.db.close();
  }

  /** Closes the queue (as {@link close}) at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.close();
  }

  #guarded(job: QueueJob, sql: string, params: (string | number)[], action: string): QueueJob {
    const rows = this.#all(sql.includes("RETURNING") ? sql : `${sql} RETURNING *`, [
      ...params,
      job.id,
      job.lockedBy,
      job.lockedAt,
    ]);
    if (rows.length === 0) {
      const now = this.get(job.id);
      throw new ClaimLostError(
        `Cannot ${action}: job ${job.id} is no longer held by worker "${job.lockedBy}" (${
          now
            ? `it is ${now.status}${now.lockedBy && now.lockedBy !== job.lockedBy ? ` by "${now.lockedBy}"` : ""}`
            : "the row was deleted or replaced"
        })`,
      );
    }
    return _row(rows[0]);
  }

  #all(sql: string, params: (string | number | null)[] = []) {
    return this.db.query(sql, params);
  }

  /**
   * Runs `fn` in a `BEGIN IMMEDIATE` transaction without ever blocking the JavaScript
   * thread on a lock and without holding the lock across an await: the write lock is
   * tried without waiting, and while another connection holds it the attempt is repeated
   * after short timer sleeps, up to the busy timeout (then SQLITE_BUSY is thrown). Once
   * the lock is held, `fn` and COMMIT run synchronously (a few small statements), so an
   * in-process app that writes synchronously never waits on a lock whose release needs
   * the event loop.
   */
  async #transaction<T>(fn: () => T): Promise<T> {
    const deadline = performance.now() + this.#busyTimeoutMs;
    let pause = 2;
    for (;;) {
      this.db.setBusyTimeout(0);
      try {
        this.db.exec("BEGIN IMMEDIATE");
        break;
      } catch (err) {
        if (!isBusy(err) || performance.now() >= deadline) throw err;
      } finally {
        this.db.setBusyTimeout(this.#busyTimeoutMs);
      }
      await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(1, deadline - performance.now()))));
      pause = Math.min(50, pause * 2);
    }
    try {
      const result = fn();
      this.db.exec("COMMIT");
      return result;
    } catch (err) {
      if (this.db.isOpen && this.db.inTransaction) {
        try {
          this.db.exec("ROLLBACK");
        } catch { /* the original error matters */ }
      }
      throw err;
    }
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => {});
    return run;
  }
}

/**
 * Checks a recurrence interval for the queue: whole seconds, at least 1 s (the queue's
 * timestamps have one-second resolution). Returns it, or throws a {@link ConfigError}.
 *
 * @example
 * ```ts
 * checkInterval(86_400_000); // 86400000
 * ```
 */
export function checkInterval(intervalMs: number): number {
  if (!Number.isFinite(intervalMs) || intervalMs < 1000 || intervalMs % 1000 !== 0) {
    throw new ConfigError(
      `Invalid --interval "${formatDuration(intervalMs)}": expected whole seconds, at least 1s ` +
        `(the queue's timestamps have one-second resolution), e.g. "24h" or "1h30m"`,
    );
  }
  return intervalMs;
}

const _GUARD = `id = ? AND status = 'processing' AND locked_by = ? AND locked_at = ?`;

function _intervalMs(text: string): number | null {
  try {
    const ms = parseDuration(text);
    return ms > 0 ? ms : null;
  } catch (err) {
    if (err instanceof DurationError) return null;
    throw err;
  }
}

/**
 * The next slot of a recurrent job: the previous slot plus the interval, or the first slot
 * of that grid after `now` when runs were missed (`skipped` counts them). The previous
 * slot is the payload's `scheduled_for` when it has one (retries move `scheduled_for`,
 * not the grid), else the row's `scheduled_for`. Intervals under one second count as one.
 *
 * @example
 * ```ts
 * nextSlot({ scheduledFor: "2025-07-01T03:00:00Z", payload: "{}", interval: "24h0m0s" }, new Date("2025-07-01T03:05:00Z"));
 * // { slot: "2025-07-02T03:00:00Z", skipped: 0 }
 * ```
 */
export function nextSlot(
  job: Pick<QueueJob, "scheduledFor" | "payload" | "interval">,
  now: Date,
): { slot: string; skipped: number } {
  const interval = _intervalMs(job.interval);
  if (interval === null) {
    throw new Error(`Cannot schedule the next run: invalid interval "${job.interval}" (expected e.g. "24h0m0s")`);
  }
  const step = Math.max(1000, interval);
  let anchor: Date | null = null;
  try {
    const p = JSON.parse(job.payload);
    if (p && typeof p.scheduled_for === "string") anchor = parseTimestamp(p.scheduled_for);
  } catch { /* not JSON: use scheduled_for */ }
  anchor ??= parseTimestamp(job.scheduledFor) ?? now;
  const base = Math.floor(anchor.getTime() / 1000) * 1000;
  let next = base + step;
  let skipped = 0;
  if (next <= now.getTime()) {
    const k = Math.floor((now.getTime() - base) / step) + 1;
    next = base + k * step;
    skipped = k - 1;
  }
  return { slot: formatTimestamp(next), skipped };
}
