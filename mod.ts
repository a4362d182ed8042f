/**
 * sqlbk: consistent, verified backups of live SQLite databases, from a Deno app or the
 * `sqlbk` command line.
 *
 * Two strategies take a snapshot without stalling the app: `online` (SQLite's Online
 * Backup API, a few pages a step) and `vacuum` (`VACUUM INTO`). The snapshot is gzipped (or zstd-compressed)
 * on every core and published atomically as
 * `<stem>-<YYYY-MM-DDTHH-MM-SSZ>-<strategy>.bck.gz` with a `.sha256` sidecar.
 *
 * Scheduled backups run from the app's own `job_queue` table (restinpieces' format):
 * `runWorker` claims due `db_backup` jobs, backs up, and schedules the next run.
 *
 * The pull client fetches the newest backup of each database from a server over SFTP,
 * through the system's OpenSSH client (`ssh -s host sftp`: OpenSSH checks the host key
 * and authenticates; Deno needs `--allow-run`), verifies it and keeps it: {@link pull},
 * {@link listBackups}, {@link restoreBackup}.
 *
 * @example
 * ```ts
 * import { runBackup, verifyBackup } from "./mod.ts";
 *
 * const result = await runBackup({ sourcePath: "app.db", backupDir: "backups", keepLast: 7 });
 * await verifyBackup(result.path);
 * console.log(`${result.file}: ${result.bytes} bytes, sha256 ${result.sha256}`);
 * ```
 *
 * @example Scheduled backups inside a Deno app
 * ```ts
 * import { loadConfig, runWorker } from "./mod.ts";
 *
 * const controller = new AbortController();
 * Deno.addSignalListener("SIGTERM", () => controller.abort());
 * await runWorker({ dbPath: "app.db", config: await loadConfig("sqlbk.toml"), signal: controller.signal });
 * ```
 *
 * @module
 */

export { type BackupProgress, type BackupResult, runBackup, type RunBackupOptions } from "./src/job.ts";
export {
  BackupBatchError,
  type BackupHandler,
  createBackupHandler,
  findPublishedBackup,
  type HandleOptions,
  type Job,
} from "./src/job.ts";
export { BackupTimeoutError, onlineBackup, type OnlineOptions } from "./src/strategies/online.ts";
export { vacuumBackup, type VacuumOptions } from "./src/strategies/vacuum.ts";
export type { SnapshotOptions, SnapshotProgress, SnapshotResult } from "./src/strategies/snapshot.ts";
export { checkSnapshot, probeSource, SnapshotCheckError, type SnapshotCheckResult } from "./src/strategies/snapshot.ts";
export { clearLongTimer, type LongTimer, MAX_TIMER_MS, setLongInterval, setLongTimeout } from "./src/timers.ts";
export {
  type BackupConfig,
  type BackupConfigInput,
  DEFAULTS,
  loadConfig,
  normalizeBackupConfig,
  parseConfig,
  resolveConfig,
  SNAPSHOT_CHECKS,
  type SnapshotCheck,
  type SqlbkConfig,
  type Strategy,
} from "./src/config.ts";
export { formatDuration, parseDuration } from "./src/duration.ts";
export {
  type BackupName,
  type BackupNameOptions,
  databaseStem,
  formatBackupName,
  groupByDatabase,
  latestPerDatabase,
  parseBackupName,
} from "./src/naming.ts";
export {
  integrityCheck,
  type IntegrityResult,
  verifyBackup,
  type VerifyOptions,
  type VerifyResult,
} from "./src/verify.ts";
export { applyRetention, type RetentionOptions } from "./src/retention.ts";
export { publishArchive, type PublishedArchive, sweepLeftovers } from "./src/archive.ts";
export { gzipFile, type GzipOptions, type GzipResult } from "./src/codecs/gzip.ts";
export { openUnzstd, zstdFile } from "./src/codecs/zstd.ts";
export {
  type Codec,
  codecOfName,
  compressFile,
  type CompressFileOptions,
  type CompressOptions,
  type CompressResult,
  detectFormat,
  isCorruptData,
  openDecompressor,
} from "./src/codecs/codec.ts";
export { DecompressError, type Decompressor, type DecompressSink } from "./src/codecs/decompressor.ts";
export {
  decompressFile,
  type DecompressFileOptions,
  type DecompressFileResult,
  gunzipFile,
} from "./src/codecs/decompress_file.ts";
export { checkDatabase, type CheckLevel, type CheckOptions, type CheckResult } from "./src/integrity.ts";
export { jsonLogger, type Logger, type LogRecord, silentLogger, textLogger } from "./src/logger.ts";
export { ConfigError, ExitCode, VerifyError } from "./src/errors.ts";
export {
  type BindValue,
  Database,
  type DatabaseOptions,
  type OpenMode,
  type Row,
  type SqlValue,
  Statement,
} from "./src/sqlite/database.ts";
export { Backup } from "./src/sqlite/backup.ts";
export { SqliteError } from "./src/sqlite/error.ts";
export { loadSqlite, type SqliteLib, SqliteLoadError, SYMBOLS } from "./src/sqlite/ffi.ts";
export { blueprint } from "./src/blueprint.ts";
export {
  checkInterval,
  type Claim,
  ClaimLostError,
  type ClaimOptions,
  type CompleteResult,
  type FailOptions,
  type FailResult,
  formatTimestamp,
  type InsertJobOptions,
  isBusy,
  JOB_QUEUE_SCHEMA,
  JOB_TYPE_DB_BACKUP,
  JobQueue,
  type JobStatus,
  nextSlot,
  type OpenQueueOptions,
  parseTimestamp,
  type QueueJob,
} from "./src/queue.ts";
export {
  defaultWorkerId,
  QueueDatabaseChangedError,
  runWorker,
  type WorkerOptions,
  type WorkerSummary,
} from "./src/worker.ts";
export {
  type AgeKeyOptions,
  APP_CONFIG_SCHEMA,
  type AppConfigRow,
  DEFAULT_CONFIG_SCOPE,
  loadConfigFromDb,
  type LoadConfigFromDbOptions,
  type PutConfigOptions,
  putConfigToDb,
  readAgeIdentities,
} from "./src/app_config.ts";
export { VERSION } from "./src/version.ts";
export { restoreBackup, type RestoreOptions, type RestoreResult } from "./src/restore.ts";
export {
  chooseLatest,
  pull,
  PullBatchError,
  type PullOptions,
  type PullProgress,
  type PullResult,
} from "./src/pull/pull.ts";
export { type BackupEntry, listBackups, listRemoteBackups } from "./src/pull/list.ts";
export { isRemoteTarget, parseTarget, type Target } from "./src/pull/target.ts";
export {
  type ConnectOptions,
  connectSftp,
  connectTarget,
  type RemoteEntry,
  type SftpChannel,
  SftpSession,
  SshError,
  type SshErrorKind,
} from "./src/pull/transport.ts";
export { DEFAULT_CHUNK_SIZE, DEFAULT_CONCURRENCY, type DownloadOptions, downloadRange } from "./src/pull/download.ts";
export { sshArgs, type SshArgsOptions, sshBinary } from "./src/pull/ssh_args.ts";
export { printable, safeJson } from "./src/printable.ts";
export { DEFAULT_LIST_LIMITS, type ListLimits } from "./src/pull/sftp.ts";
export { type Gunzip, gunzipBackend, GunzipError, type GunzipSink, openGunzip } from "./src/codecs/gunzip.ts";
export { parsePullTable, PULL_KEYS, type PullTable } from "./src/pull/pull_config.ts";
export {
  backupStatus,
  codecOf,
  type DatabaseStatus,
  formatAge,
  type Freshness,
  type NewestBackup,
  type StatusOptions,
} from "./src/monitor/status.ts";
export {
  type FreshnessSample,
  mergeSamples,
  METRIC_FAMILIES,
  type MetricName,
  type MetricSamples,
  parseMetrics,
  renderMetrics,
  type RunKind,
  type RunSample,
  updateMetricsFile,
} from "./src/monitor/metrics.ts";
export { type HeartbeatOptions, type HeartbeatResult, heartbeatUrl, sendHeartbeat } from "./src/monitor/heartbeat.ts";
export { runProbes, verifyWithProbes } from "./src/monitor/probes.ts";
export { checkProbes, probeProblem } from "./src/monitor/probe_check.ts";
export { escapeHtml, renderStatusPage, type StatusPageOptions } from "./src/monitor/html.ts";
export { DEFAULT_MAX_AGE, type MonitorConfig } from "./src/monitor/monitor_config.ts";
export {
  databasesInMetrics,
  reportRun,
  type ReportRunOptions,
  type ReportTargets,
  RunObserver,
  type RunReport,
} from "./src/monitor/report.ts";
export { rewriteLocked } from "./src/monitor/locked_write.ts";
