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
  type SnapshotCheck,
  type SqlbkConfig,
  type Strategy,
} from "./config.ts";
import { ConfigError, errorMessage } from "./errors.ts";
import { databaseStem, formatBackupName, groupByDatabase, isFromTheFuture, sidecarName } from "./naming.ts";
import { readSidecarOf } from "./verify.ts";
import { sha256File } from "./hash.ts";
import { writeFileAtomic } from "./fs.ts";
import { assertNameFree, DirectoryLock, publishArchive, snapshotTempName } from "./archive.ts";
import { applyRetention } from "./retention.ts";
import { onlineBackup } from "./strategies/online.ts";
import { vacuumBackup } from "./strategies/vacuum.ts";
import {
  checkSnapshot,
  probeSource,
  removeSnapshot,
  SnapshotCheckError,
  type SnapshotResult,
} from "./strategies/snapshot.ts";
import { emit, type Logger, silentLogger, textLogger } from "./logger.ts";
import { formatDuration } from "./duration.ts";
import { clearLongTimer, setLongTimeout } from "./timers.ts";

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
  /** SHA-256 of the archive (also in its sidecar, `.<file>.sha256`). */
  sha256: string;
  /** The strategy used. */
  strategy: Strategy;
  /** Pages in the snapshot. */
  pages: number;
  /** Restarts of an online copy. */
  restarts: number;
  /** The check the snapshot passed before publishing: `quick`, `full` or `none`. */
  check: SnapshotCheck;
  /** How long that check took, in ms. */
  checkMs: number;
  /** Wall time of the whole job in ms. */
  durationMs: number;
  /** Old backups deleted by `keep_last`. */
  deleted: string[];
  /**
   * True when no new backup was taken because an earlier attempt of the same job had
   * already published this one (a worker killed after publishing, before recording it).
   */
  reused?: boolean;
}

/** Progress of a running backup, for progress bars. */
export interface BackupProgress {
  /** The database being backed up. */
  database: string;
  /** `snapshot` (copying pages) or `compress` (gzip or zstd). */
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

/**
 * Checks the source and backup directory; creates the directory when its parent exists.
 *
 * The source is a live database: it is looked at with `stat` (which opens nothing) and
 * through SQLite ({@link probeSource}), never opened or read as a file. Closing any
 * descriptor of the file would drop every POSIX lock this process holds on it, including
 * those of the app's or the job queue's own connections (DESIGN.md rule 10).
 */
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
  if (info.size === 0) {
    throw new SnapshotCheckError(
      `Source "${cfg.sourcePath}" is empty (0 bytes): refusing to publish an empty backup (is source_path the right file?)`,
    );
  }
  probeSource(cfg.sourcePath);
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
      if (mkErr instanceof Deno.errors.AlreadyExists) {
        const link = await Deno.lstat(cfg.backupDir).catch(() => null);
        if (link?.isSymlink) {
          const target = await Deno.readLink(cfg.backupDir).catch(() => "?");
          throw new ConfigError(
            `Invalid "backup_dir" "${cfg.backupDir}": it is a symbolic link to "${target}", which does not exist (create the directory or fix the link)`,
            { cause: mkErr },
          );
        }
        return;
      }
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
  const notWritable = (err: unknown) =>
    err instanceof Deno.errors.PermissionDenied || /os error 30\b|read-only file system/i.test(errorMessage(err));
  const refuse = (err: unknown) =>
    new ConfigError(
      `Invalid "backup_dir" "${cfg.backupDir}": cannot write there (${
        err instanceof Deno.errors.PermissionDenied ? "permission denied" : "read-only file system"
      }); make it writable for this user or choose another backup_dir`,
      { cause: err },
    );
  let lock: DirectoryLock;
  try {
    lock = await DirectoryLock.acquire(cfg.backupDir);
  } catch (err) {
    if (notWritable(err)) throw refuse(err);
    throw err;
  }
  // The lock file may exist from when the directory was writable: prove a new file can be
  // made, under a snapshot temp name (so a crash right here leaves a name the sweep knows).
  const probe = join(cfg.backupDir, snapshotTempName(databaseStem(cfg.sourcePath)));
  try {
    // rule 10: a new temp file in backup_dir, never the source
    (await Deno.open(probe, { write: true, createNew: true })).close();
    await Deno.remove(probe);
  } catch (err) {
    lock.release();
    if (notWritable(err)) throw refuse(err);
    throw err;
  }
  return lock;
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
    emit(logger, { level: "info", event: "backup.start", msg: `backup of ${cfg.name} started`, ...fields });
    if (lock.swept.length > 0) {
      emit(logger, {
        level: "warn",
        event: "backup.swept",
        msg: `removed ${lock.swept.length} leftover temp files of an interrupted run`,
        ...fields,
        files: lock.swept,
      });
    }
    const file = formatBackupName(databaseStem(cfg.sourcePath), startTime, {
      strategy: cfg.strategy,
      codec: cfg.compression,
    });
    const finalPath = join(cfg.backupDir, file);
    await assertNameFree(finalPath); // before the snapshot, so a taken name costs no work
    snapshot = resolve(cfg.backupDir, snapshotTempName(databaseStem(cfg.sourcePath)));

    let lastTenth = 0;
    const tenths = (done: number, total: number, phase: string, extra: Record<string, unknown> = {}) => {
      const tenth = total > 0 ? Math.floor((done / total) * 10) : 10;
      if (tenth > lastTenth) {
        lastTenth = tenth;
        emit(logger, {
          level: "info",
          event: "backup.progress",
          msg: `${cfg.name} ${phase} ${tenth * 10}%`,
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
    // The check runs while the archive is compressed (both only read the snapshot); the
    // archive is published only once the check passed (rule 11).
    const checking = checkSnapshot(snapshot, cfg.check).then((checked) => {
      emit(logger, {
        level: "info",
        event: "backup.checked",
        msg: `${cfg.name} snapshot passed ${_checkName(cfg.check)}`,
        database: cfg.name,
        check: cfg.check,
        durationMs: checked.durationMs,
      });
      return checked;
    });
    lastTenth = 0;
    const published = await publishArchive(snapshot, finalPath, {
      gate: checking,
      level: cfg.compressionLevel,
      workers: options.workers,
      signal: options.signal,
      onProgress: (done, total) => {
        tenths(done, total, "compress");
        options.onProgress?.({ database: cfg.name, phase: "compress", done, total, restarts: snap.restarts });
      },
    });
    const checked = await checking;
    await removeSnapshot(snapshot);
    snapshot = null;
    // An unchecked backup (check = "none") never rotates out older ones: it may be the
    // corrupt copy of a damaged source, and the older backups the last sound ones.
    let deleted: string[] = [];
    if (cfg.check === "none" && cfg.keepLast > 0) {
      emit(logger, {
        level: "warn",
        event: "backup.retention_skipped",
        msg: `${cfg.name}: keep_last ${cfg.keepLast} not applied: this backup was not checked (check = "none"), ` +
          `so no older backup is deleted for it (set check = "quick" or "full" to rotate backups)`,
        ...fields,
        keepLast: cfg.keepLast,
      });
    } else {
      deleted = await applyRetention(cfg.backupDir, databaseStem(cfg.sourcePath), {
        keepLast: cfg.keepLast,
        protect: file,
      });
    }
    const result: BackupResult = {
      database: cfg.name,
      file,
      path: finalPath,
      bytes: published.bytes,
      sha256: published.sha256,
      strategy: cfg.strategy,
      pages: snap.pages,
      restarts: snap.restarts,
      check: checked.check,
      checkMs: checked.durationMs,
      durationMs: Math.round(performance.now() - started),
      deleted,
    };
    emit(logger, {
      level: "info",
      event: "backup.done",
      msg: `backup of ${cfg.name} published ${file}`,
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
    emit(logger, {
      level: "error",
      event: "backup.failed",
      msg: `backup of ${cfg.name} failed: ${errorMessage(err)}`,
      ...fields,
      error: errorMessage(err),
    });
    throw err;
  } finally {
    if (snapshot) await removeSnapshot(snapshot);
    lock?.release();
  }
}

function _checkName(check: SnapshotCheck): string {
  return check === "full" ? "integrity_check" : check === "quick" ? "quick_check" : 'no check (check = "none")';
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
    ? setLongTimeout(
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
    clearLongTimer(timer);
    outer?.removeEventListener("abort", onAbort);
  }
}

/**
 * Raised by a handler when some databases of a config failed; `results` holds the others.
 *
 * @example
 * ```ts
 * try {
 *   await createBackupHandler(await loadConfig("sqlbk.toml")).handle({ id: 1, jobType: "db_backup" });
 * } catch (err) {
 *   if (err instanceof BackupBatchError) console.error(err.failures.map((f) => f.database));
 * }
 * ```
 */
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

/** Options of {@link BackupHandler.handle}. */
export interface HandleOptions {
  /** Cancels the running backup between steps; nothing partial is published. */
  signal?: AbortSignal;
  /**
   * Set when the job is run again after its worker died: a backup of a database published
   * at or after this time (the job's slot) by that earlier attempt is kept and reported
   * (`reused: true`) instead of taking a second one. Default: none, always back up.
   */
  reusePublishedSince?: Date;
}

/** The object a job queue calls for each due backup job. */
export interface BackupHandler {
  /**
   * Backs up every database of the config, one after another. Resolves with every result;
   * rejects with a {@link BackupBatchError} when any failed (after trying all of them).
   */
  handle(job: Job, options?: HandleOptions): Promise<BackupResult[]>;
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
    async handle(job: Job, handleOptions: HandleOptions = {}): Promise<BackupResult[]> {
      const results: BackupResult[] = [];
      const failures: { database: string; error: unknown }[] = [];
      for (const db of databases) {
        if (handleOptions.signal?.aborted) {
          failures.push({ database: db.name, error: handleOptions.signal.reason });
          continue;
        }
        try {
          const since = handleOptions.reusePublishedSince;
          const earlier = since ? await findPublishedBackup(db, since) : null;
          if (earlier) {
            emit(_withJob(logger, job), {
              level: "info",
              event: "backup.reused",
              msg:
                `backup of ${db.name}: ${earlier.file} was already published by an earlier attempt of this job; not taking another`,
              database: db.name,
              file: earlier.file,
            });
            results.push(earlier);
            continue;
          }
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

/**
 * The newest archive of `config`'s database in its backup directory whose name's time is
 * at or after `since` (and not in the future), as a result marked `reused`, or null. Its
 * sidecar is written when missing (an archive of an older sqlbk killed before writing it).
 *
 * @example
 * ```ts
 * const earlier = await findPublishedBackup({ sourcePath: "app.db" }, new Date("2025-07-01T10:00:00Z"));
 * ```
 */
export async function findPublishedBackup(
  config: BackupConfigInput | BackupConfig,
  since: Date,
): Promise<BackupResult | null> {
  const cfg = normalizeBackupConfig(config);
  const stem = databaseStem(cfg.sourcePath);
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(cfg.backupDir)) if (entry.isFile) names.push(entry.name);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  const found =
    groupByDatabase(names).get(stem)?.filter((b) =>
      b.grammar === "dashed" && b.time.getTime() >= since.getTime() && !isFromTheFuture(b)
    ) ?? [];
  const newest = found.at(-1);
  if (!newest) return null;
  const path = join(cfg.backupDir, newest.name);
  const bytes = (await Deno.stat(path)).size;
  let sha256 = await readSidecarOf(cfg.backupDir, newest.name);
  if (sha256 === null) {
    // rule 10: a published archive in backup_dir, never the source
    sha256 = await sha256File(path);
    await writeFileAtomic(join(cfg.backupDir, sidecarName(newest.name)), `${sha256}  ${newest.name}\n`);
  }
  return {
    database: cfg.name,
    file: newest.name,
    path,
    bytes,
    sha256,
    strategy: (newest.strategy ?? cfg.strategy) as Strategy,
    pages: 0,
    restarts: 0,
    check: cfg.check,
    checkMs: 0,
    durationMs: 0,
    deleted: [],
    reused: true,
  };
}
