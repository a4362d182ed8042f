/**
 * The pull pipeline: list the remote directory, choose the newest backup of each
 * database by the timestamp in its name, download it to `<name>.partial` (resuming an
 * interrupted download of the same, unchanged remote file, retrying dropped
 * connections), verify it (sidecar checksum, decompression, integrity check on every core), publish it
 * atomically, and apply local retention.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join, posix, resolve } from "node:path";
import { ConfigError, errorMessage, VerifyError } from "../errors.ts";
import { sleep } from "../sleep.ts";
import {
  diskFullError,
  ensureDirectory,
  exists,
  fsyncDir,
  fsyncFile,
  isDiskFull,
  publishFile,
  removeIfExists,
  writeFileAtomic,
  writeRefusal,
} from "../fs.ts";
import { type BackupName, groupByDatabase, parseBackupName, sidecarNames, splitFuture } from "../naming.ts";
import { applyRetention } from "../retention.ts";
import { checkFailure, parseSidecar, toRollbackJournal, verifyBackup } from "../verify.ts";
import { sha256File } from "../hash.ts";
import { checkCovers, formatVerifiedMarker, readVerifiedMarker, type VerifiedMarker } from "../verified_marker.ts";
import { type Inflater, startInflate } from "../codecs/background.ts";
import { freeSpaceShortfall, isOutputLimit, LOW_SPACE_CODE } from "../codecs/database_limit.ts";
import { formatBytes } from "../format.ts";
import { checkDecompressors, isCorruptData } from "../codecs/codec.ts";
import { checkDatabase, type CheckLevel } from "../integrity.ts";
import { holdVerifyDir } from "../verify_temps.ts";
import { runProbes } from "../monitor/probes.ts";
import { type DownloadOptions, downloadRange } from "./download.ts";
import { parseTarget, type Target } from "./target.ts";
import { type ConnectOptions, connectTarget, type RemoteEntry, type SftpSession, SshError } from "./transport.ts";
import { printable } from "../printable.ts";

/** Options for {@link pull}; the connection options are those of {@link connectTarget}. */
export interface PullOptions extends Omit<ConnectOptions, "host"> {
  /** Local directory receiving the backups (created when missing). Default `.`. */
  localDir?: string;
  /** Databases to pull; empty or absent pulls the newest backup of every database found. */
  databases?: string[];
  /** Newest local backups to keep per database after a pull; 0 keeps all. Default 0. */
  keepLast?: number;
  /** Reconnect-and-resume attempts after a dropped connection. Default 3. */
  retries?: number;
  /** First retry delay in ms, doubled each attempt (at most 30 s). Default 1000. */
  retryDelayMs?: number;
  /** Also publish the verified database as `<database>-latest.db`, replaced atomically. Default false. */
  decompress?: boolean;
  /** Keep a download that fails verification as `<name>.corrupt` instead of deleting it. Default false. */
  keepCorrupt?: boolean;
  /** SQL probes run read-only on each verified copy before it is published (see `runProbes`). Default: none. */
  probes?: string[];
  /** The check before publishing: `full` (everything `PRAGMA integrity_check` checks) or `quick`. Default `full`. */
  check?: CheckLevel;
  /** Connections the check uses at once. Default: the number of cores. */
  jobs?: number;
  /** Bytes per SFTP read request. Default 128 KiB. */
  chunkSize?: DownloadOptions["chunkSize"];
  /** SFTP read requests in flight. Default 32. */
  concurrency?: DownloadOptions["concurrency"];
  /** Cancels the pull between and during transfers. */
  signal?: AbortSignal;
  /** Download progress. */
  onProgress?: (progress: PullProgress) => void;
  /** Human-readable log lines (retries, resumes, skips). Default: none. */
  onLog?: (message: string) => void;
  /** Called as each database finishes successfully. */
  onResult?: (result: PullResult) => void;
}

/** Progress of one download. */
export interface PullProgress {
  /** The database. */
  database: string;
  /** The remote file name. */
  file: string;
  /** `download` or `verify`. */
  phase: "download" | "verify";
  /** Bytes in the local file so far. */
  bytes: number;
  /** The remote file's size. */
  total: number;
}

/** What a pull did for one database. */
export interface PullResult {
  /** The database name. */
  database: string;
  /** The backup's file name. */
  file: string;
  /** The local path it is published under. */
  path: string;
  /** Its size in bytes. */
  bytes: number;
  /** SHA-256 of the archive. */
  sha256: string;
  /** Whether it is verified (always true for a result; failures throw). */
  verified: boolean;
  /** True when the same file was already present and verified locally: nothing was downloaded. */
  skipped: boolean;
  /** Bytes resumed from an earlier interrupted download (0 when none). */
  resumedFrom: number;
  /** Whether the server's `.sha256` sidecar was checked. */
  checksumVerified: boolean;
  /** The check that ran before publishing; null when the file was already here (skipped). */
  check: CheckLevel | null;
  /** How long that check took, in ms (0 when skipped). */
  checkMs: number;
  /** The `<database>-latest.db` written with `decompress`. */
  latestDb?: string;
  /** Older local backups deleted by `keepLast`. */
  deleted: string[];
}

/**
 * Several databases failed; `failures` has each error. Exit code 3 when every failure is
 * a verification failure, else 1.
 *
 * @example
 * ```ts
 * try {
 *   await pull("backup@db1:/srv/app/backups", { localDir: "/srv/pulled/app" });
 * } catch (err) {
 *   if (err instanceof PullBatchError) for (const f of err.failures) console.error(f.database, f.error);
 * }
 * ```
 */
export class PullBatchError extends Error {
  /** Always `"PullBatchError"`. */
  override name = "PullBatchError";
  /** The failures, by database. */
  readonly failures: { database: string; error: unknown }[];
  /** The databases that succeeded. */
  readonly results: PullResult[];
  /** 3 when all failures are verification failures, else 1. */
  readonly exitCode: number;
  /**
   * Summarizes the failures in the message.
   * @param failures each failed database with its error
   * @param results the pulls that succeeded
   */
  constructor(failures: { database: string; error: unknown }[], results: PullResult[]) {
    super(
      `${failures.length} database(s) failed: ` +
        failures.map((f) => `${f.database}: ${errorMessage(f.error)}`).join("; "),
    );
    this.failures = failures;
    this.results = results;
    this.exitCode = failures.every((f) => f.error instanceof VerifyError) ? 3 : 1;
  }
}

interface _PartialState {
  remotePath: string;
  size: number;
  mtime: number;
}

const _SIDE = ".sha256";

/**
 * Chooses the newest backup of each database from a directory listing: only regular
 * files whose names parse (temp, partial, sidecar, hidden and foreign names never
 * count), newest by the timestamp in the name. Names dated further in the future than
 * the clock-skew allowance (`isFromTheFuture`) are never chosen; `onFuture` hears of each.
 *
 * @example
 * ```ts
 * const chosen = chooseLatest([{ name: "app-2025-07-01T10-30-00Z-vacuum.bck.gz", size: 1, mtime: 0, isFile: true }]);
 * chosen.get("app")?.name; // "app-2025-07-01T10-30-00Z-vacuum.bck.gz"
 * ```
 */
export function chooseLatest(
  entries: RemoteEntry[],
  options: { now?: number; onFuture?: (backup: BackupName) => void } = {},
): Map<string, BackupName> {
  const groups = groupByDatabase(entries.filter((e) => e.isFile).map((e) => e.name));
  const { current, future } = splitFuture(groups, options.now);
  for (const backup of future) options.onFuture?.(backup);
  const latest = new Map<string, BackupName>();
  for (const [db, list] of current) latest.set(db, list[list.length - 1]);
  return latest;
}

async function _readState(path: string): Promise<_PartialState | null> {
  try {
    const s = JSON.parse(await Deno.readTextFile(path));
    if (typeof s?.remotePath === "string" && typeof s.size === "number" && typeof s.mtime === "number") return s;
  } catch { /* missing or unreadable: start over */ }
  return null;
}

async function _localSize(path: string): Promise<number | null> {
  try {
    const st = await Deno.stat(path);
    return st.isFile ? st.size : null;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** The wait before retry number `attempt` (0-based): `baseMs` doubled per attempt, at most 30 s. */
function _backoffMs(attempt: number, baseMs: number): number {
  return Math.min(30_000, baseMs * 2 ** attempt);
}

/** A connection failure that may pass (refused, timed out, dropped), as opposed to auth, host-key or algorithm errors. */
function _isTransient(err: unknown): err is SshError {
  return err instanceof SshError && err.retryable;
}

/**
 * The first connection, retried like a dropped transfer when the failure may pass (refused,
 * timed out, dropped): a server rebooting or a network blip must not cost a nightly pull.
 * Authentication, host-key and name errors fail at once.
 */
async function _connectWithRetries(
  connect: () => Promise<SftpSession>,
  retries: number,
  delayMs: number,
  log: (line: string) => void,
  signal: AbortSignal | undefined,
): Promise<SftpSession> {
  for (let attempt = 0;; attempt++) {
    try {
      return await connect();
    } catch (err) {
      if (!_isTransient(err) || attempt >= retries || signal?.aborted) throw err;
      const delay = _backoffMs(attempt, delayMs);
      log(`${errorMessage(err)}; retrying in ${delay / 1000}s (attempt ${attempt + 1} of ${retries})`);
      await sleep(delay, signal);
    }
  }
}

/**
 * Pulls the newest backup of each database from an SFTP server into a local directory.
 * Resolves to one result per database; throws the error of a single failed database, or
 * a {@link PullBatchError} when several failed. A backup that fails verification throws
 * a VerifyError (exit 3) and leaves every earlier local backup untouched.
 *
 * @param target `[user@]host:/dir`, `sftp://[user@]host[:port]/dir`, or a parsed {@link Target}
 * @param options where to put the files, which databases, connection settings
 *
 * @example
 * ```ts
 * const results = await pull("backup@db1.example.com:/var/backups/app", {
 *   localDir: "/srv/pulled",
 *   keepLast: 14,
 * });
 * for (const r of results) console.log(r.database, r.path, r.skipped ? "(already here)" : "");
 * ```
 */
export async function pull(target: string | Target, options: PullOptions = {}): Promise<PullResult[]> {
  const t = typeof target === "string" ? parseTarget(target) : target;
  const localDir = resolve(options.localDir ?? ".");
  const log = options.onLog ?? (() => {});
  const retries = options.retries ?? 3;
  const connect = () => connectTarget(t, options);
  checkDecompressors(); // a bad SQLBK_LIBZ fails here, as a configuration error, not mid-pull

  await ensureDirectory(localDir, "Cannot pull into");
  const lockFile = await _openPullLock(localDir);
  try {
    if (!(await lockFile.tryLock(true))) {
      throw new Error(`Another "sqlbk pull" is writing into "${localDir}"; wait for it to finish`);
    }
    // Held for the whole run: killed runs' verification and --decompress temp files are swept
    // now (when no verify runs here), and no later sweep touches ours.
    const tempLock = await holdVerifyDir(localDir);
    try {
      return await _pullLocked(t, localDir, options, log, retries, connect);
    } finally {
      tempLock.release();
    }
  } finally {
    lockFile.close();
  }
}

/** Opens the pull lock in `localDir`; a directory this user may not write is a ConfigError naming it. */
async function _openPullLock(localDir: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(join(localDir, ".sqlbk-pull.lock"), { read: true, write: true, create: true });
  } catch (err) {
    const refusal = writeRefusal(err);
    if (refusal === null) throw err;
    throw new ConfigError(
      `Cannot pull into "${localDir}": cannot write in it (${refusal}); pull as a user who may write there, ` +
        `or give --to a writable directory`,
      { cause: err },
    );
  }
}

async function _pullLocked(
  t: Target,
  localDir: string,
  options: PullOptions,
  log: (line: string) => void,
  retries: number,
  connect: () => Promise<SftpSession>,
): Promise<PullResult[]> {
  let session: SftpSession = await _connectWithRetries(
    connect,
    retries,
    options.retryDelayMs ?? 1000,
    log,
    options.signal,
  );
  // An interrupt ends the connection, so that no request waits for a server that stopped answering.
  const onAbort = () => session.abort(new SshError("connection", "Interrupted"));
  options.signal?.addEventListener("abort", onAbort);
  try {
    const remoteDir = t.remoteDir;
    const where = `${session.label}:${remoteDir}`;
    const entries = await session.list(remoteDir);
    const latest = chooseLatest(entries, {
      onFuture: (b) =>
        log(
          `warning: skipping "${b.name}": it is dated ${b.time.toISOString()}, in the future of this machine's clock (more than 10 minutes ahead); it is never pulled`,
        ),
    });
    const wanted = options.databases?.length ? options.databases : [...latest.keys()].sort();
    if (latest.size === 0) {
      const seen = entries.map((e) => printable(e.name)).sort(); // names are the server's text
      throw new Error(
        `No backups found in "${where}"; saw ${
          seen.length === 0
            ? "an empty directory"
            : `${seen.length} entr${seen.length === 1 ? "y" : "ies"}: ${seen.slice(0, 20).join(", ")}${
              seen.length > 20 ? ", ..." : ""
            }`
        } (backups are named like <database>-YYYY-MM-DDTHH-MM-SSZ-<strategy>.bck.gz)`,
      );
    }
    const missing = wanted.filter((db) => !latest.has(db));
    if (missing.length > 0) {
      throw new Error(
        `No backups of ${missing.map((m) => `"${m}"`).join(", ")} in "${where}"; databases found: ${
          [...latest.keys()].sort().map((d) => printable(d)).join(", ")
        }`,
      );
    }
    const byName = new Map(entries.map((e) => [e.name, e]));
    const results: PullResult[] = [];
    const failures: { database: string; error: unknown }[] = [];
    for (const database of wanted) {
      options.signal?.throwIfAborted();
      const chosen = latest.get(database)!;
      try {
        const result = await _pullOne(chosen, byName.get(chosen.name)!, {
          ...options,
          localDir,
          remoteDir,
          sidecar: sidecarNames(chosen.name).find((n) => byName.get(n)?.isFile === true) ?? null,
          log,
          retries,
          getSession: () => session,
          reconnect: async () => {
            await session.close().catch(() => {});
            session = await connect();
            return session;
          },
        });
        results.push(result);
        options.onResult?.(result);
      } catch (err) {
        if (options.signal?.aborted) throw err;
        failures.push({ database, error: err });
        if (err instanceof SshError && !err.retryable && err.kind !== "not-found" && err.kind !== "permission") {
          break; // the connection itself is unusable
        }
      }
    }
    if (failures.length === 1 && results.length === 0 && wanted.length === 1) throw failures[0].error;
    if (failures.length > 0) throw new PullBatchError(failures, results);
    return results;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    await session.close().catch(() => {});
  }
}

interface _OneOptions extends PullOptions {
  localDir: string;
  remoteDir: string;
  /** The remote sidecar's name (`.<name>.sha256` or `<name>.sha256`), or null when there is none. */
  sidecar: string | null;
  log: (m: string) => void;
  retries: number;
  getSession: () => SftpSession;
  reconnect: () => Promise<SftpSession>;
}

async function _pullOne(chosen: BackupName, entry: RemoteEntry, o: _OneOptions): Promise<PullResult> {
  const name = chosen.name;
  const database = chosen.database;
  const remotePath = posix.join(o.remoteDir, name);
  const finalPath = join(o.localDir, name);
  const partialPath = `${finalPath}.partial`;
  const statePath = `${finalPath}.partial.json`;
  const localSidecar = `${finalPath}${_SIDE}`;
  let expected: string | undefined;
  if (o.sidecar !== null) {
    const remoteSidecar = posix.join(o.remoteDir, o.sidecar);
    const text = await o.getSession().readText(remoteSidecar);
    try {
      expected = parseSidecar(text, `${o.getSession().label}:${remoteSidecar}`, { expectedName: name });
    } catch (err) {
      throw new VerifyError(`Backup "${name}" cannot be verified: ${errorMessage(err)}`, { cause: err });
    }
  }
  const size = entry.size;
  const base: Omit<
    PullResult,
    "sha256" | "skipped" | "resumedFrom" | "checksumVerified" | "deleted" | "check" | "checkMs"
  > = {
    database,
    file: name,
    path: finalPath,
    bytes: size,
    verified: true,
  };
  const latestDbPath = join(o.localDir, `${database}-latest.db`);

  // Already here and verified by an earlier pull? Only the pull's own mark counts (a
  // checksum file copied from the server proves nothing), with a check at least as strong
  // as this pull's, and only while the copy still has the bytes that were verified.
  const localSize = await _localSize(finalPath);
  let replace = false;
  if (localSize !== null) {
    let mark: VerifiedMarker | null = null;
    try {
      mark = await readVerifiedMarker(o.localDir, name);
    } catch { /* an unreadable mark: not known to be verified */ }
    const wanted = o.check ?? "full";
    if (localSize === size && mark !== null && (expected === undefined || expected === mark.sha256)) {
      if (!checkCovers(mark.check, wanted)) {
        o.log(`${database}: ${name} passed only the ${mark.check} check; fetching and verifying it again (${wanted})`);
      } else if ((await sha256File(finalPath)) !== mark.sha256) {
        o.log(`${database}: the local copy of ${name} changed since it was verified (damaged?); fetching it again`);
      } else {
        let latestDb: string | undefined;
        if (o.decompress && !(await exists(latestDbPath))) {
          latestDb = await _publishLatest(finalPath, chosen, latestDbPath, o, mark.sha256);
        }
        const deleted = await _retention(o, database, name);
        return {
          ...base,
          sha256: mark.sha256,
          skipped: true,
          resumedFrom: 0,
          check: null,
          checkMs: 0,
          checksumVerified: expected !== undefined,
          latestDb,
          deleted,
        };
      }
    }
    replace = true; // a local file of that name that is not a verified copy of this one
  }

  // Resume an interrupted download of the same, unchanged remote file.
  const state = await _readState(statePath);
  const partialSize = await _localSize(partialPath);
  let offset = 0;
  if (
    state && partialSize !== null && state.remotePath === remotePath && state.size === size &&
    state.mtime === entry.mtime && partialSize <= size
  ) {
    offset = partialSize;
    if (offset > 0) o.log(`${database}: resuming ${name} at ${offset} of ${size} bytes`);
  }
  const resumedFrom = offset;
  // The archive must fit with the same margin the decompression keeps: a server offering a
  // huge file never fills this disk (the download reads at most the size it announced).
  const short = freeSpaceShortfall(o.localDir, size - offset);
  if (short) {
    throw new Error(
      `Cannot download "${name}" (${formatBytes(size - offset)} to go) into "${o.localDir}": it would leave less ` +
        `than ${formatBytes(short.margin)} free there (${formatBytes(short.free)} free; sqlbk keeps the smaller of ` +
        `256 MiB and 5% of the file system free): free some space there`,
    );
  }
  try {
    await Deno.writeTextFile(statePath, JSON.stringify({ remotePath, size, mtime: entry.mtime }));
  } catch (err) {
    throw isDiskFull(err) ? diskFullError(err, statePath) : err;
  }
  // Hash the download as it is written (and the resumed prefix), to compare with the
  // server's checksum before the costlier checks.
  // The same bytes go to a decompressor writing the database to a temp file, so that only
  // the integrity check is left once the last byte arrives.
  const hash = createHash("sha256");
  const tmpDb = join(o.localDir, `.sqlbk-verify-${crypto.randomUUID().slice(0, 8)}.db`);
  // Output that breaks the database rule, or would leave too little free space, stops the
  // download at once: the rest of the archive cannot change the outcome.
  const stop = new AbortController();
  const inflater: Inflater | null = chosen.compressed
    ? startInflate(tmpDb, {
      expect: chosen.codec,
      onError: (e) => {
        if (isOutputLimit(e) || e.code === LOW_SPACE_CODE) stop.abort(new Error(e.message));
      },
    })
    : null;
  const downloadSignal = o.signal ? AbortSignal.any([o.signal, stop.signal]) : stop.signal;
  const discardTmp = async () => {
    await inflater?.abort();
    await removeIfExists(tmpDb).catch(() => {});
  };
  try {
    return await _downloadAndVerify();
  } catch (err) {
    await discardTmp();
    throw err;
  }

  async function _downloadAndVerify(): Promise<PullResult> {
    if (offset > 0) {
      offset = await _hashPrefix(partialPath, offset, (data) => {
        hash.update(data);
        if (inflater) return inflater.push(data);
      });
    }
    let hashed = offset;

    // Download, retrying dropped connections and resuming where it stopped.
    for (let attempt = 0;; attempt++) {
      try {
        offset = await downloadRange(o.getSession(), remotePath, {
          localPath: partialPath,
          offset,
          size,
          chunkSize: o.chunkSize,
          concurrency: o.concurrency,
          signal: downloadSignal,
          stallTimeoutMs: o.timeoutMs ?? 30_000,
          onProgress: (bytes) => o.onProgress?.({ database, file: name, phase: "download", bytes, total: size }),
          onWritten: (data) => {
            hashed += data.byteLength;
            hash.update(data);
            if (inflater) return inflater.push(data); // decompressed in a worker
          },
        });
        break;
      } catch (err) {
        if (o.signal?.aborted) throw err;
        if (stop.signal.aborted) break; // the decompression failed: its error is reported below
        if (isDiskFull(err)) throw diskFullError(err, partialPath);
        const retryable = err instanceof SshError && (err.retryable || o.getSession().lostError !== null);
        if (!retryable || attempt >= o.retries) throw err;
        offset = hashed; // every byte hashed was written; a torn last write is cut off
        const delay = _backoffMs(attempt, o.retryDelayMs ?? 1000);
        o.log(
          `${database}: ${errorMessage(err)}; retrying in ${delay / 1000}s from byte ${offset} (attempt ${
            attempt + 1
          } of ${o.retries})`,
        );
        await sleep(delay, o.signal);
        for (;;) {
          try {
            const session = await o.reconnect();
            const now = await session.stat(remotePath);
            if (now.size !== size || now.mtime !== entry.mtime) {
              throw new Error(`Remote file "${remotePath}" changed during the pull; run again to fetch the newest`);
            }
            break;
          } catch (reconnectErr) {
            if (!_isTransient(reconnectErr) || attempt >= o.retries - 1) throw reconnectErr;
            attempt++;
            const wait = _backoffMs(attempt, o.retryDelayMs ?? 1000);
            o.log(`${database}: ${errorMessage(reconnectErr)}; retrying in ${wait / 1000}s`);
            await sleep(wait, o.signal);
          }
        }
      }
    }

    // Verify before publishing: checksum, decompression, integrity check.
    o.onProgress?.({ database, file: name, phase: "verify", bytes: size, total: size });
    const inflated = inflater ? await inflater.finish() : null;
    const sha256 = hash.digest("hex");
    const checksumVerified = expected !== undefined;
    const reject = async (msg: string, cause?: unknown): Promise<never> => {
      await discardTmp();
      await removeIfExists(statePath).catch(() => {});
      if (o.keepCorrupt) {
        await Deno.rename(partialPath, `${finalPath}.corrupt`);
        throw new VerifyError(`${msg}; kept as "${finalPath}.corrupt"`, { cause });
      }
      await removeIfExists(partialPath);
      throw new VerifyError(`${msg}; the download was deleted and earlier local backups are untouched`, { cause });
    };
    const failed = `Backup "${name}" failed verification`;
    // Checked first: a download stopped early by them has no meaningful checksum.
    if (inflated?.error && isOutputLimit(inflated.error)) await reject(`${failed}: ${inflated.error.message}`);
    if (inflated?.error?.code === LOW_SPACE_CODE) {
      throw new Error(`Cannot decompress "${name}" into "${tmpDb}": ${inflated.error.message}`);
    }
    if (expected !== undefined && sha256 !== expected) {
      await reject(`${failed}: SHA-256 of the download is ${sha256}, the server's checksum file says ${expected}`);
    }
    if (inflated?.error) {
      const err = inflated.error;
      if (isDiskFull(err)) throw diskFullError(err, tmpDb);
      if (!isCorruptData(err)) throw new Error(`Cannot decompress "${name}" into "${tmpDb}": ${err.message}`);
      await reject(`${failed}: the ${chosen.codec} data is corrupt or truncated (${err.message})`);
    }
    o.signal?.throwIfAborted();
    // The archive's fsync (needed to publish it) runs while SQLite checks the database.
    const [check] = await Promise.all([
      checkDatabase(inflater ? tmpDb : partialPath, { level: o.check, jobs: o.jobs, signal: o.signal }),
      fsyncFile(partialPath),
    ]);
    if (!check.ok) await reject(checkFailure(name, check).message);
    // Restore probes, a separate step after whatever checks ran.
    try {
      await runProbes(inflater ? tmpDb : partialPath, o.probes ?? [], { label: name });
    } catch (err) {
      await reject(errorMessage(err), err);
    }

    // Publish: rename into place (fsynced above), fsync the directory; then the sidecar.
    await publishFile(partialPath, finalPath, { overwrite: replace });
    await removeIfExists(statePath);
    try {
      await writeFileAtomic(localSidecar, formatVerifiedMarker(name, { sha256, check: check.level }), {
        overwrite: true,
      });
    } catch (err) {
      throw isDiskFull(err) ? diskFullError(err, localSidecar) : err;
    }
    let latestDb: string | undefined;
    if (o.decompress) {
      latestDb = await _publishLatest(finalPath, chosen, latestDbPath, o, sha256, inflater ? tmpDb : undefined);
    } else await removeIfExists(tmpDb);
    await _sweepOldPartials(o.localDir, database, name);
    const deleted = await _retention(o, database, name);
    return {
      ...base,
      sha256,
      skipped: false,
      resumedFrom,
      checksumVerified,
      check: check.level,
      checkMs: check.durationMs,
      latestDb,
      deleted,
    };
  }
}

/** Feeds the first `bytes` of a file to `feed`; returns how many it read (less if the file is shorter). */
async function _hashPrefix(
  path: string,
  bytes: number,
  feed: (data: Uint8Array) => Promise<void> | void,
): Promise<number> {
  const f = await Deno.open(path, { read: true });
  try {
    const buf = new Uint8Array(1 << 20);
    let done = 0;
    while (done < bytes) {
      const n = await f.read(buf.subarray(0, Math.min(buf.length, bytes - done)));
      if (n === null) break;
      await feed(buf.slice(0, n));
      done += n;
    }
    return done;
  } finally {
    f.close();
  }
}

async function _publishLatest(
  archivePath: string,
  chosen: BackupName,
  latestDbPath: string,
  o: _OneOptions,
  sha256: string,
  verifiedTmp?: string,
): Promise<string> {
  let tmp = verifiedTmp;
  if (tmp === undefined) {
    tmp = join(o.localDir, `.sqlbk-${chosen.database}-latest-${crypto.randomUUID().slice(0, 8)}.db.tmp`);
    try {
      if (chosen.compressed) {
        await verifyBackup(archivePath, {
          sha256,
          useSidecar: false,
          compressed: true,
          keepDatabaseAt: tmp,
          signal: o.signal,
          check: o.check,
          jobs: o.jobs,
        });
      } else {
        await Deno.copyFile(archivePath, tmp); // fsynced below, with every other path
      }
    } catch (err) {
      await removeIfExists(tmp).catch(() => {});
      throw isDiskFull(err) ? diskFullError(err, tmp) : err;
    }
  }
  try {
    await toRollbackJournal(tmp); // one self-contained file, whatever mode the archive's header says
    await fsyncFile(tmp);
    await Deno.rename(tmp, latestDbPath);
    await fsyncDir(o.localDir);
  } catch (err) {
    await removeIfExists(tmp).catch(() => {});
    throw isDiskFull(err) ? diskFullError(err, tmp) : err;
  }
  return latestDbPath;
}

async function _sweepOldPartials(dir: string, database: string, keep: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    const m = /^(.+)\.partial(\.json)?$/.exec(e.name);
    if (!e.isFile || !m || m[1] === keep) continue;
    if (parseBackupName(m[1])?.database === database) await removeIfExists(join(dir, e.name)).catch(() => {});
  }
}

async function _retention(o: _OneOptions, database: string, protect: string): Promise<string[]> {
  if (!o.keepLast) return [];
  return await applyRetention(o.localDir, database, {
    keepLast: o.keepLast,
    protect,
    grammars: ["dashed", "compact", "id"],
  });
}
