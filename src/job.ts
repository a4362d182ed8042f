/**
 * The backup job: check the inputs, take a snapshot with the configured strategy, publish
 * it as a gzip archive with a sidecar, apply retention. Plus the job handler a queue
 * calls, which runs every database of a config and reports each.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import {
  type BackupConfig,
  type BackupConfigInput,
  normalizeBackupConfig,
  type SqlbkConfig,
  type Strategy,
} from "./config.ts";
import { ConfigError, errorMessage } from "./errors.ts";
import { databaseStem, formatBackupName } from "./naming.ts";
import { assertNameFree, DirectoryLock, publishArchive, snapshotTempName } from "./archive.ts";
import { applyRetention } from "./retention.ts";
import { onlineBackup } from "./strategies/online.ts";
import { vacuumBackup } from "./strategies/vacuum.ts";
import { removeSnapshot, type SnapshotResult } from "./strategies/snapshot.ts";
import { emit, type Logger, silentLogger, textLogger } from "./logger.ts";
import { formatDuration } from "./duration.ts";

/** What one successful backup produced. */
export interface BackupResult {
  /** The database's name (config table key or source stem). */
  database: string;
  /** The archive's file name. */
  file: string;
  /** The archive's path. */
  path: string;
  /** The archive's size in bytes. */
  bytes: number;
  /** SHA-256 of the archive (also in `<path>.sha256`). */
  sha256: string;
  /** The strategy used. */
  strategy: Strategy;
  /** Pages in the snapshot. */
  pages: number;
  /** Restarts of an online copy. */
  restarts: number;
  /** Wall time of the whole job in ms. */
  durationMs: number;
  /** Old backups deleted by `keep_last`. */
  deleted: string[];
}

/** Progress of a running backup, for progress bars. */
export interface BackupProgress {
  /** The database being backed up. */
  database: string;
  /** `snapshot` (copying pages) or `compress` (gzip). */
  phase: "snapshot" | "compress";
  /** Units done in this phase (pages, or bytes). */
  done: number;
  /** Units in this phase. */
  total: number;
  /** Online restarts so far. */
  restarts: number;
}

/** Options for {@link runBackup}. */
export interface RunBackupOptions {
  /** Cancels the backup between steps/blocks; nothing is published. */
  signal?: AbortSignal;
  /** Receives structured log records. Default: {@link silentLogger}. */
  logger?: Logger;
  /** Called as the backup advances. */
  onProgress?: (progress: BackupProgress) => void;
  /** The job's start time used in the file name. Default: now. */
  startTime?: Date;
  /** Compression workers. Default: the number of cores. */
  workers?: number;
}

const _SQLITE_HEADER = "SQLite format 3\0";

/** Checks the source and backup directory; creates the directory when its parent exists. */
async function _preflight(cfg: BackupConfig): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(cfg.sourcePath);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new ConfigError(`Invalid "source_path" "${cfg.sourcePath}": no such file (check the path)`, { cause: err });
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new ConfigError(`Invalid "source_path" "${cfg.sourcePath}": permission denied`, { cause: err });
    }
    throw err;
  }
  if (!info.isFile) throw new ConfigError(`Invalid "source_path" "${cfg.sourcePath}": not a regular file`);
  if (info.size > 0) {
    const header = new Uint8Array(16);
    const file = await Deno.open(cfg.sourcePath, { read: true });
    let n = 0;
    try {
      while (n < 16) {
        const r = await file.read(header.subarray(n));
        if (r === null) break;
        n += r;
      }
    } finally {
      file.close();
    }
    if (n < 16 || new TextDecoder().decode(header) !== _SQLITE_HEADER) {
      throw new ConfigError(
        `Invalid "source_path" "${cfg.sourcePath}": not a SQLite database (the file does not start with the SQLite header)`,
      );
    }
  }
  try {
    const dir = await Deno.stat(cfg.backupDir);
    if (!dir.isDirectory) {
      throw new ConfigError(`Invalid "backup_dir" "${cfg.backupDir}": it is a file, not a directory`);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    const parent = dirname(resolve(cfg.backupDir));
    try {
      await Deno.mkdir(cfg.backupDir);
    } catch (mkErr) {
      if (mkErr instanceof Deno.errors.NotFound) {
        throw new ConfigError(
          `Invalid "backup_dir" "${cfg.backupDir}": its parent "${parent}" does not exist (create it first)`,
          { cause: mkErr },
        );
      }
      if (mkErr instanceof Deno.errors.AlreadyExists) return;
      if (mkErr instanceof Deno.errors.PermissionDenied) {
        throw new ConfigError(`Invalid "backup_dir" "${cfg.backupDir}": cannot create it: permission denied`, {
          cause: mkErr,
        });
      }
      throw mkErr;
    }
  }
}

async function _lock(cfg: BackupConfig): Promise<DirectoryLock> {
  try {
    return await DirectoryLock.acquire(cfg.backupDir);
  } catch (err) {
    if (err instanceof Deno.errors.PermissionDenied || /os error 30\b|read-only file system/i.test(errorMessage(err))) {
      throw new ConfigError(`Invalid "backup_dir" "${cfg.backupDir}": cannot write there: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    throw err;
  }
}

/**
 * Runs one backup of one database and returns what it published. Bad settings, a missing
 * source or an unusable `backup_dir` throw a {@link ConfigError}; any other failure throws
 * with the reason. A failed or cancelled job publishes nothing and leaves earlier backups
 * untouched.
 *
 * @param config the database's settings (only `sourcePath` is required)
 * @param options signal, logger, onProgress, startTime, workers
 *
 * @example
 * ```ts
 * import { runBackup } from "./mod.ts";
 * const result = await runBackup({ sourcePath: "app.db", backupDir: "backups", strategy: "vacuum" });
 * console.log(result.path, result.bytes, result.sha256);
 * ```
 */
export async function runBackup(
  config: BackupConfigInput | BackupConfig,
  options: RunBackupOptions = {},
): Promise<BackupResult> {
  const cfg = normalizeBackupConfig(config);
  const logger = options.logger ?? silentLogger;
  const started = performance.now();
  const startTime = options.startTime ?? new Date();
  const fields = { database: cfg.name, strategy: cfg.strategy, source: cfg.sourcePath };
  let lock: DirectoryLock | null = null;
  let snapshot: string | null = null;
  try {
    options.signal?.throwIfAborted();
    await _preflight(cfg);
    lock = await _lock(cfg);
    emit(logger, "info", "backup.start", `backup of ${cfg.name} started`, fields);
    if (lock.swept.length > 0) {
      emit(logger, "warn", "backup.swept", `removed ${lock.swept.length} leftover temp files of an interrupted run`, {
        ...fields,
        files: lock.swept,
      });
    }
    const file = formatBackupName(databaseStem(cfg.sourcePath), startTime, cfg.strategy);
    const finalPath = join(cfg.backupDir, file);
    await assertNameFree(finalPath); // before the snapshot, so a taken name costs no work
    snapshot = resolve(cfg.backupDir, snapshotTempName(databaseStem(cfg.sourcePath)));

    let lastTenth = 0;
    const tenths = (done: number, total: number, phase: string, extra: Record<string, unknown> = {}) => {
      const tenth = total > 0 ? Math.floor((done / total) * 10) : 10;
      if (tenth > lastTenth) {
        lastTenth = tenth;
        emit(logger, "info", "backup.progress", `${cfg.name} ${phase} ${tenth * 10}%`, {
          database: cfg.name,
          phase,
          percent: tenth * 10,
          ...extra,
        });
      }
    };
    let snap: SnapshotResult;
    if (cfg.strategy === "online") {
      snap = await onlineBackup(cfg.sourcePath, snapshot, {
        pagesPerStep: cfg.pagesPerStep,
        sleepIntervalMs: cfg.sleepIntervalMs,
        maxDurationMs: cfg.maxDurationMs,
        signal: options.signal,
        onProgress: (p) => {
          tenths(p.pagesCopied, p.totalPages, "snapshot", { restarts: p.restarts });
          options.onProgress?.({
            database: cfg.name,
            phase: "snapshot",
            done: p.pagesCopied,
            total: p.totalPages,
            restarts: p.restarts,
          });
        },
      });
    } else {
      snap = await _withDeadline(
        cfg.maxDurationMs,
        options.signal,
        (signal) => vacuumBackup(cfg.sourcePath, snapshot!, { signal }),
        cfg,
      );
      options.onProgress?.({ database: cfg.name, phase: "snapshot", done: snap.pages, total: snap.pages, restarts: 0 });
    }
    lastTenth = 0;
    const published = await publishArchive(snapshot, finalPath, {
      level: cfg.compressionLevel,
      workers: options.workers,
      signal: options.signal,
      onProgress: (done, total) => {
        tenths(done, total, "compress");
        options.onProgress?.({ database: cfg.name, phase: "compress", done, total, restarts: snap.restarts });
      },
    });
    await removeSnapshot(snapshot);
    snapshot = null;
    const deleted = await applyRetention(cfg.backupDir, databaseStem(cfg.sourcePath), cfg.keepLast, { protect: file });
    const result: BackupResult = {
      database: cfg.name,
      file,
      path: finalPath,
      bytes: published.bytes,
      sha256: published.sha256,
      strategy: cfg.strategy,
      pages: snap.pages,
      restarts: snap.restarts,
      durationMs: Math.round(performance.now() - started),
      deleted,
    };
    emit(logger, "info", "backup.done", `backup of ${cfg.name} published ${file}`, {
      ...fields,
      file,
      bytes: result.bytes,
      pages: result.pages,
      restarts: result.restarts,
      durationMs: result.durationMs,
      deleted: deleted.length > 0 ? deleted : undefined,
    });
    return result;
  } catch (err) {
    emit(logger, "error", "backup.failed", `backup of ${cfg.name} failed: ${errorMessage(err)}`, {
      ...fields,
      error: errorMessage(err),
    });
    throw err;
  } finally {
    if (snapshot) await removeSnapshot(snapshot);
    lock?.release();
  }
}

/** Runs `fn` with a signal that also fires after `maxMs` (0: never), naming max_duration in the error. */
async function _withDeadline<T>(
  maxMs: number,
  outer: AbortSignal | undefined,
  fn: (signal: AbortSignal) => Promise<T>,
  cfg: BackupConfig,
): Promise<T> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(outer!.reason);
  outer?.addEventListener("abort", onAbort, { once: true });
  const timer = maxMs > 0
    ? setTimeout(
      () =>
        controller.abort(
          new Error(`Backup of "${cfg.sourcePath}" did not finish within max_duration ${formatDuration(maxMs)}`),
        ),
      maxMs,
    )
    : undefined;
  try {
    return await fn(controller.signal);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener("abort", onAbort);
  }
}

/** Raised by a handler when some databases of a config failed; `results` holds the others. */
export class BackupBatchError extends Error {
  /** Always `"BackupBatchError"`. */
  override name = "BackupBatchError";
  /** The backups that succeeded. */
  readonly results: BackupResult[];
  /** Each failed database with its error. */
  readonly failures: { database: string; error: unknown }[];

  /**
   * Summarizes the failures in the message.
   * @param results the backups that succeeded
   * @param failures each failed database with its error
   */
  constructor(results: BackupResult[], failures: { database: string; error: unknown }[]) {
    super(
      failures.length === 1
        ? `Backup of ${failures[0].database} failed: ${errorMessage(failures[0].error)}`
        : `${failures.length} backups failed: ${
          failures.map((f) => `${f.database}: ${errorMessage(f.error)}`).join("; ")
        }`,
    );
    this.results = results;
    this.failures = failures;
  }

  /** 2 when every failure was a configuration error, else 1. */
  get exitCode(): number {
    return this.failures.every((f) => f.error instanceof ConfigError) ? 2 : 1;
  }
}

/** A job as a queue hands it to a handler; only what the handler may look at. */
export interface Job {
  /** The queue's row id. */
  id?: number | bigint;
  /** The job type, `db_backup` for backups. */
  jobType?: string;
  /** Extra fields a queue passes along. */
  [key: string]: unknown;
}

/** The object a job queue calls for each due backup job. */
export interface BackupHandler {
  /**
   * Backs up every database of the config, one after another. Resolves with every result;
   * rejects with a {@link BackupBatchError} when any failed (after trying all of them).
   */
  handle(job: Job, options?: { signal?: AbortSignal }): Promise<BackupResult[]>;
}

/**
 * Builds the handler a job queue calls to run a backup job.
 *
 * @param config a whole config (several databases) or one database's settings
 * @param options `logger` (default: text lines on stderr), `onProgress`, `workers`
 *
 * @example
 * ```ts
 * import { createBackupHandler, loadConfig } from "./mod.ts";
 * const handler = createBackupHandler(await loadConfig("sqlbk.toml"));
 * const results = await handler.handle({ id: 1, jobType: "db_backup" }, { signal: AbortSignal.timeout(3_600_000) });
 * ```
 */
export function createBackupHandler(
  config: SqlbkConfig | BackupConfigInput | BackupConfig,
  options: { logger?: Logger; onProgress?: (p: BackupProgress) => void; workers?: number } = {},
): BackupHandler {
  const databases = "databases" in config ? config.databases : [normalizeBackupConfig(config)];
  const logger = options.logger ?? textLogger;
  return {
    async handle(job: Job, handleOptions: { signal?: AbortSignal } = {}): Promise<BackupResult[]> {
      const results: BackupResult[] = [];
      const failures: { database: string; error: unknown }[] = [];
      for (const db of databases) {
        if (handleOptions.signal?.aborted) {
          failures.push({ database: db.name, error: handleOptions.signal.reason });
          continue;
        }
        try {
          results.push(
            await runBackup(db, {
              signal: handleOptions.signal,
              logger: _withJob(logger, job),
              onProgress: options.onProgress,
              workers: options.workers,
            }),
          );
        } catch (error) {
          failures.push({ database: db.name, error });
        }
      }
      if (failures.length > 0) throw new BackupBatchError(results, failures);
      return results;
    },
  };
}

function _withJob(logger: Logger, job: Job): Logger {
  if (job.id === undefined) return logger;
  const jobId = typeof job.id === "bigint" ? job.id.toString() : job.id;
  return { log: (record) => logger.log({ ...record, job: jobId }) };
}
