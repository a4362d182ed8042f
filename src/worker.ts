/**
 * The backup worker: polls the app's `job_queue`, claims due `db_backup` rows, runs the
 * backup handler with a timeout and an abort signal, and records the outcome in the Go
 * server's formats. Runs inside a Deno app (through `mod.ts`) or as `sqlbk run`.
 *
 * @module
 */

import { sleep } from "./sleep.ts";
import { clearLongTimer, setLongInterval, setLongTimeout } from "./timers.ts";
import type { BackupConfig, BackupConfigInput, SqlbkConfig } from "./config.ts";
import { DEFAULTS } from "./config.ts";
import { formatDuration, parseDuration } from "./duration.ts";
import { errorMessage } from "./errors.ts";
import { type BackupHandler, type BackupResult, createBackupHandler } from "./job.ts";
import { emit, type Logger, textLogger } from "./logger.ts";
import { type Claim, ClaimLostError, isBusy, JobQueue, parseTimestamp, type QueueJob } from "./queue.ts";

/** Options for {@link runWorker}. */
export interface WorkerOptions {
  /** The app's database holding `job_queue`. Required. */
  dbPath: string;
  /**
   * What to back up: a whole config, one database's settings, or a function returning a
   * config, called at start and again before each job (so a changed config applies to the
   * next run). Either this or `handler` is required.
   */
  config?: SqlbkConfig | BackupConfigInput | BackupConfig | (() => Promise<SqlbkConfig>);
  /** Runs a job instead of a handler built from `config`. */
  handler?: BackupHandler;
  /** How often to look for due jobs, in ms (the worker also wakes when the next job is due). Default 10 s. */
  pollMs?: number;
  /** Run what is due, then resolve, instead of polling forever. Default false. */
  once?: boolean;
  /**
   * A job is aborted and recorded as failed after this many ms; 0 for no limit. Default: the
   * config's `max_duration` (summed over its databases; 0 when one has no limit), else 1 h.
   */
  timeoutMs?: number;
  /**
   * A row left in processing longer than this (its worker died) is claimed again, in ms.
   * A live worker renews its lease every third of it. Default: twice the timeout, or 1 h
   * when there is no timeout.
   */
  leaseMs?: number;
  /** The first retry's delay after a failure, doubled on each further attempt, in ms. Default 30 s. */
  backoffMs?: number;
  /** The longest retry delay, in ms (a recurrent job's never exceeds its interval). Default 1 h. */
  maxBackoffMs?: number;
  /** Written to `locked_by`. Default `<hostname>:<pid>`. */
  workerId?: string;
  /** Receives log records. Default: {@link textLogger} (lines on stderr). */
  logger?: Logger;
  /** Stops the worker: no new claims, the running backup is aborted between steps and its row set back to pending. */
  signal?: AbortSignal;
  /** How long a queue statement waits for another connection's lock, in ms. Default 5000. */
  busyTimeoutMs?: number;
  /** Compression workers per backup. Default: the number of cores. */
  workers?: number;
}

/** What a worker did, when it stopped. */
export interface WorkerSummary {
  /** Jobs claimed. */
  ran: number;
  /** Jobs completed. */
  succeeded: number;
  /** Jobs that failed (recorded as failed, or whose outcome could not be recorded). */
  failed: number;
  /** Jobs interrupted by the signal and given back as pending. */
  interrupted: number;
  /** The results of the successful jobs' backups. */
  results: BackupResult[];
}

/**
 * The default worker id, written to `locked_by`: `<hostname>:<pid>` (`localhost` without
 * `--allow-sys=hostname`).
 *
 * @example
 * ```ts
 * defaultWorkerId(); // "web1:4242"
 * ```
 */
export function defaultWorkerId(): string {
  let host = "localhost";
  try {
    host = Deno.hostname();
  } catch { /* no --allow-sys=hostname */ }
  return `${host}:${Deno.pid}`;
}

function _timeoutOf(config: SqlbkConfig | null): number {
  if (!config) return parseDuration(DEFAULTS.max_duration);
  if (config.databases.some((d) => d.maxDurationMs === 0)) return 0;
  return config.databases.reduce((sum, d) => sum + d.maxDurationMs, 0);
}

function _asConfig(config: WorkerOptions["config"]): SqlbkConfig | null {
  if (!config || typeof config === "function") return null;
  if ("databases" in config) return config;
  return null;
}

/** Waits `ms`, or until `signal` aborts (which ends the wait early, not with an error). */
function _wait(ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(Math.max(0, ms), signal).catch(() => {});
}

/**
 * Runs the backup worker on the app's `job_queue` until the signal aborts (or, with
 * `once`, until nothing is due). Every due `db_backup` row is claimed atomically, backed
 * up with {@link createBackupHandler}, and recorded: completed with the next run
 * scheduled, failed with a retry after a backoff, or (when the signal stopped it) pending
 * again. Other job types are never touched. Resolves with a summary; throws a
 * `ConfigError` when the database or its `job_queue` is missing.
 *
 * @example
 * ```ts
 * import { loadConfig, runWorker } from "./mod.ts";
 *
 * const controller = new AbortController();
 * Deno.addSignalListener("SIGTERM", () => controller.abort());
 * await runWorker({ dbPath: "app.db", config: await loadConfig("sqlbk.toml"), signal: controller.signal });
 * ```
 */
export async function runWorker(options: WorkerOptions): Promise<WorkerSummary> {
  const logger = options.logger ?? textLogger;
  const signal = options.signal;
  const pollMs = Math.max(10, options.pollMs ?? 10_000);
  const workerId = options.workerId ?? defaultWorkerId();
  if (!options.handler && !options.config) throw new TypeError("runWorker() needs a config or a handler");
  const loadConfig = typeof options.config === "function" ? options.config : null;
  let initial = _asConfig(options.config);
  if (loadConfig) initial = await loadConfig();
  const timeoutMs = options.timeoutMs ?? _timeoutOf(initial);
  const leaseMs = options.leaseMs ?? (timeoutMs > 0 ? 2 * timeoutMs : 3_600_000);
  const summary: WorkerSummary = { ran: 0, succeeded: 0, failed: 0, interrupted: 0, results: [] };

  const queue = JobQueue.open(options.dbPath, { busyTimeoutMs: options.busyTimeoutMs });
  try {
    queue.requireTable();
    const identity = await _identity(options.dbPath);
    const checkIdentity = () => _assertSameDatabase(options.dbPath, identity);
    emit(logger, {
      level: "info",
      event: "worker.start",
      msg: `worker ${workerId} watching ${options.dbPath}`,
      worker: workerId,
      poll: formatDuration(pollMs),
      timeout: formatDuration(timeoutMs),
      lease: formatDuration(leaseMs),
      once: options.once ? true : undefined,
    });
    while (!signal?.aborted) {
      await checkIdentity();
      let claim: Claim | null;
      try {
        claim = await queue.claim({
          workerId,
          leaseMs,
          onExpired: (rows) => {
            for (const row of rows) {
              emit(logger, {
                level: "error",
                event: "job.expired",
                msg: `job ${row.id} failed: ${row.lastError}`,
                job: row.id,
              });
            }
          },
        });
      } catch (err) {
        if (options.once) {
          // cron reads the exit code: a due job that could not be claimed is a failure.
          throw new Error(`Cannot claim due jobs in "${options.dbPath}": ${errorMessage(err)}`, { cause: err });
        }
        emit(logger, {
          level: isBusy(err) ? "warn" : "error",
          event: "worker.claim_failed",
          msg: `cannot claim jobs: ${errorMessage(err)}`,
          worker: workerId,
        });
        claim = null;
        await _wait(pollMs, signal);
        continue;
      }
      if (claim) {
        summary.ran++;
        await _runJob(queue, claim, {
          ...options,
          logger,
          workerId,
          timeoutMs,
          leaseMs,
          loadConfig,
          summary,
          checkIdentity,
        });
        continue;
      }
      if (options.once) break;
      await _wait(await _untilNextDue(queue, pollMs), signal);
    }
  } finally {
    queue.close();
  }
  emit(logger, {
    level: "info",
    event: "worker.stop",
    msg: `worker ${workerId} stopped`,
    worker: workerId,
    ran: summary.ran,
    succeeded: summary.succeeded,
    failed: summary.failed,
    interrupted: summary.interrupted,
  });
  return summary;
}

async function _untilNextDue(queue: JobQueue, pollMs: number): Promise<number> {
  let due: string | null = null;
  try {
    due = await queue.nextDue();
  } catch {
    return pollMs;
  }
  const at = due === null ? null : parseTimestamp(due);
  if (!at) return pollMs;
  const wait = at.getTime() - Date.now();
  return wait <= 0 ? Math.min(pollMs, 250) : Math.min(pollMs, wait + 5);
}

interface _JobContext extends WorkerOptions {
  logger: Logger;
  workerId: string;
  timeoutMs: number;
  leaseMs: number;
  loadConfig: (() => Promise<SqlbkConfig>) | null;
  summary: WorkerSummary;
  checkIdentity: () => Promise<void>;
}

/**
 * Raised when the worker's database was deleted or replaced under it: it stops claiming.
 *
 * @example
 * ```ts
 * try {
 *   await runWorker({ dbPath: "app.db", config: await loadConfig("sqlbk.toml") });
 * } catch (err) {
 *   if (err instanceof QueueDatabaseChangedError) console.error("app.db was replaced; restart the worker");
 * }
 * ```
 */
export class QueueDatabaseChangedError extends Error {
  /** Always `"QueueDatabaseChangedError"`. */
  override name = "QueueDatabaseChangedError";
}

interface _Identity {
  dev: number;
  ino: number | null;
}

async function _identity(path: string): Promise<_Identity> {
  const info = await Deno.stat(path); // stat opens nothing: safe on a live database
  return { dev: info.dev, ino: info.ino };
}

/**
 * Throws {@link QueueDatabaseChangedError} when `path` is gone or is another file than the
 * one the worker opened (a new inode): its connection would go on writing a file no one
 * else sees.
 */
async function _assertSameDatabase(path: string, was: _Identity): Promise<void> {
  let now: _Identity;
  try {
    now = await _identity(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new QueueDatabaseChangedError(
        `The job queue database "${path}" was deleted while the worker ran; stopped claiming jobs ` +
          `(restart the worker once the database is back)`,
        { cause: err },
      );
    }
    throw err;
  }
  if (now.dev !== was.dev || (now.ino !== null && was.ino !== null && now.ino !== was.ino)) {
    throw new QueueDatabaseChangedError(
      `The job queue database "${path}" was replaced by another file while the worker ran (inode ${was.ino} is now ` +
        `${now.ino}); stopped claiming jobs (restart the worker to use the new file)`,
    );
  }
}

async function _runJob(queue: JobQueue, claim: Claim, ctx: _JobContext): Promise<void> {
  const { logger, signal } = ctx;
  const job = claim.job;
  const fields = { job: job.id, worker: ctx.workerId };
  if (claim.reclaimedFrom) {
    emit(logger, {
      level: "warn",
      event: "job.reclaimed",
      msg: `job ${job.id} reclaimed from worker ${claim.reclaimedFrom.lockedBy || "(unknown)"}: its lease expired`,
      ...fields,
      lockedAt: claim.reclaimedFrom.lockedAt,
    });
  }
  emit(logger, {
    level: "info",
    event: "job.start",
    msg: `job ${job.id} started (attempt ${job.attempts})`,
    ...fields,
    scheduledFor: job.scheduledFor,
    attempt: job.attempts,
  });

  const controller = new AbortController();
  const onAbort = () => controller.abort(signal!.reason ?? new Error("The worker was stopped"));
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort(); // stopped between the claim and now: give the row back at once
  const timer = ctx.timeoutMs > 0
    ? setLongTimeout(
      () =>
        controller.abort(new Error(`Job ${job.id} did not finish within the timeout ${formatDuration(ctx.timeoutMs)}`)),
      ctx.timeoutMs,
    )
    : undefined;
  let lost: Error | null = null;
  let beating = false;
  const beat = setLongInterval(async () => {
    if (beating) return;
    beating = true;
    try {
      await queue.heartbeat(job);
    } catch (err) {
      if (err instanceof ClaimLostError) {
        lost = err;
        controller.abort(err);
      } else {
        emit(logger, {
          level: "warn",
          event: "job.heartbeat_failed",
          msg: `cannot renew the lease of job ${job.id}: ${errorMessage(err)}`,
          ...fields,
        });
      }
    } finally {
      beating = false;
    }
  }, Math.max(500, Math.floor(ctx.leaseMs / 3)));
  const stop = () => {
    clearLongTimer(timer);
    clearLongTimer(beat);
    signal?.removeEventListener("abort", onAbort);
  };

  let results: BackupResult[];
  try {
    const handler = ctx.handler ??
      createBackupHandler(ctx.loadConfig ? await ctx.loadConfig() : ctx.config as SqlbkConfig, {
        logger,
        workers: ctx.workers,
      });
    // A job whose worker died may have published its backup before it could record it:
    // keep that backup rather than take a second one for the same slot.
    const slot = claim.reclaimedFrom ? parseTimestamp(job.scheduledFor) : null;
    results = await handler.handle(
      { id: job.id, jobType: job.jobType, scheduledFor: job.scheduledFor, attempt: job.attempts },
      { signal: controller.signal, reusePublishedSince: slot ?? undefined },
    );
  } catch (err) {
    stop();
    if (lost) {
      ctx.summary.failed++;
      emit(logger, {
        level: "error",
        event: "job.lost",
        msg: `job ${job.id} stopped: ${errorMessage(lost)}`,
        ...fields,
      });
      return;
    }
    if (signal?.aborted) {
      ctx.summary.interrupted++;
      try {
        await queue.release(job);
        emit(logger, {
          level: "warn",
          event: "job.interrupted",
          msg: `job ${job.id} interrupted; it is pending again and runs on restart`,
          ...fields,
        });
      } catch (releaseErr) {
        emit(logger, {
          level: "error",
          event: "job.release_failed",
          msg: `job ${job.id} interrupted, but cannot set it back to pending: ${
            errorMessage(releaseErr)
          } (it is claimed again after the lease)`,
          ...fields,
        });
      }
      return;
    }
    ctx.summary.failed++;
    await _recordFailure(queue, job, err, ctx);
    return;
  }
  stop();
  try {
    await ctx.checkIdentity();
  } catch (err) {
    ctx.summary.failed++;
    throw err;
  }
  try {
    const done = await queue.complete(job);
    ctx.summary.succeeded++;
    ctx.summary.results.push(...results);
    if (done.skipped > 0) {
      emit(logger, {
        level: "warn",
        event: "job.skipped",
        msg: `job ${job.id}: skipped ${done.skipped} missed run${
          done.skipped === 1 ? "" : "s"
        }; next run on the interval grid at ${done.next?.scheduledFor}`,
        ...fields,
        skipped: done.skipped,
      });
    }
    emit(logger, {
      level: "info",
      event: "job.done",
      msg: `job ${job.id} completed${done.next ? `; next run ${done.next.scheduledFor} (job ${done.next.id})` : ""}`,
      ...fields,
      files: results.map((r) => r.file),
      next: done.next?.scheduledFor,
      nextJob: done.next?.id,
    });
  } catch (err) {
    ctx.summary.failed++;
    if (err instanceof ClaimLostError) {
      emit(logger, {
        level: "error",
        event: "job.lost",
        msg: `job ${job.id}: the backup finished but ${errorMessage(err)}`,
        ...fields,
      });
      return;
    }
    await _recordFailure(queue, job, err, ctx);
  }
}

async function _recordFailure(queue: JobQueue, job: QueueJob, err: unknown, ctx: _JobContext): Promise<void> {
  const fields = { job: job.id, worker: ctx.workerId };
  try {
    const r = await queue.fail(job, err, { backoffMs: ctx.backoffMs, maxBackoffMs: ctx.maxBackoffMs });
    emit(ctx.logger, {
      level: "error",
      event: "job.failed",
      msg: `job ${job.id} failed (attempt ${job.attempts}${job.maxAttempts > 0 ? ` of ${job.maxAttempts}` : ""}): ${
        errorMessage(err)
      }; ${r.retryAt ? `retry at ${r.retryAt}` : "no attempts left, not retried"}`,
      ...fields,
      error: errorMessage(err),
      retryAt: r.retryAt ?? undefined,
    });
  } catch (recordErr) {
    emit(ctx.logger, {
      level: "error",
      event: "job.failed",
      msg: `job ${job.id} failed: ${errorMessage(err)}; and the failure could not be recorded: ${
        errorMessage(recordErr)
      } (it is claimed again after the lease)`,
      ...fields,
      error: errorMessage(err),
    });
  }
}
