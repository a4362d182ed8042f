/**
 * Proving a backup sound: checksum against its `.sha256` sidecar, a complete
 * decompression (gzip or zstd, by name and first bytes), and the integrity check on
 * every core ({@link checkDatabase}: all `PRAGMA integrity_check` finds, or
 * `quick_check` only).
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { Database } from "./sqlite/database.ts";
import { SqliteError } from "./sqlite/error.ts";
import { ConfigError, errorMessage, VerifyError } from "./errors.ts";
import { type Codec, codecOfName, detectFileFormat, isCorruptData } from "./codecs/codec.ts";
import { decompressFile } from "./codecs/decompress_file.ts";
import { isOutputLimit, LOW_SPACE_CODE } from "./codecs/database_limit.ts";
import { sha256File } from "./hash.ts";
import { fsyncFile, removeIfExists, writeRefusal } from "./fs.ts";
import { checkDatabase, type CheckLevel, type CheckResult } from "./integrity.ts";
import { sidecarNames } from "./naming.ts";
import { holdVerifyDir } from "./verify_temps.ts";
import type { DirectoryLock } from "./archive.ts";

/** The outcome of `PRAGMA integrity_check`. */
export interface IntegrityResult {
  /** True only when SQLite returned exactly one row, `ok`. */
  ok: boolean;
  /** The first rows SQLite returned (at most 10), or the error it raised. */
  messages: string[];
}

/**
 * Runs one `PRAGMA integrity_check` on a database file, read-only and off the JavaScript
 * thread, on one core (see {@link checkDatabase} for the same check on every core). A
 * file SQLite cannot read (SQLITE_CORRUPT, SQLITE_NOTADB) is a failed check, not an
 * exception; so is a database with no pages (a 0-byte file is a valid, empty SQLite
 * database, but never a backup). The file is opened `immutable`, so no `-wal`, `-shm` or
 * `-journal` is ever left beside it, even when its header says WAL (the Go tool's online
 * backups of WAL databases do): use it on backups and copies, never on a live database.
 *
 * @example
 * ```ts
 * const { ok, messages } = await integrityCheck("restored.db");
 * if (!ok) console.error(messages.join("\n"));
 * ```
 */
export async function integrityCheck(path: string): Promise<IntegrityResult> {
  let db: Database;
  try {
    db = new Database(path, { mode: "readonly", immutable: true });
  } catch (err) {
    if (err instanceof SqliteError) return { ok: false, messages: [err.message] };
    throw err;
  }
  try {
    const pages = Number(Object.values(db.query("PRAGMA page_count")[0] ?? {})[0] ?? 0);
    if (!(pages >= 1)) return { ok: false, messages: ["the file is not a SQLite database with at least one page"] };
    const rows = await db.queryAsync("PRAGMA integrity_check(10)");
    const messages = rows.map((row) => String(Object.values(row)[0]));
    return { ok: messages.length === 1 && messages[0] === "ok", messages };
  } catch (err) {
    if (err instanceof SqliteError) return { ok: false, messages: [err.message] };
    throw err;
  } finally {
    db.close();
  }
}

/**
 * Switches a database copy of ours (a decompressed backup, never a live database) to
 * rollback-journal `DELETE` mode, so it is one self-contained file that leaves no `-wal`
 * or `-shm` behind when opened: archives of WAL databases made elsewhere say WAL in their
 * header. A no-op for a file already in a rollback mode.
 *
 * @example
 * ```ts
 * await toRollbackJournal("restored.db.tmp");
 * ```
 */
export async function toRollbackJournal(path: string): Promise<void> {
  const db = new Database(path, { mode: "readwrite" });
  try {
    // rule 10: a copy this process made, not a live database
    const rows = await db.queryAsync("PRAGMA journal_mode=DELETE");
    const mode = String(Object.values(rows[0] ?? {})[0] ?? "");
    if (mode.toLowerCase() !== "delete") {
      throw new Error(`Cannot switch "${path}" to journal_mode=DELETE: it stays ${mode}`);
    }
  } finally {
    db.close();
  }
}

/**
 * Reads a `sha256sum`-style sidecar (`<hex>  <file name>`) and returns the hex digest.
 * Throws {@link VerifyError} when the file is malformed or names another file.
 *
 * @example
 * ```ts
 * const hex = await readSidecar("app-2025-07-01T10-30-00Z-vacuum.bck.gz.sha256");
 * ```
 */
export async function readSidecar(sidecarPath: string, expectedName?: string): Promise<string> {
  const text = await Deno.readTextFile(sidecarPath);
  return parseSidecar(text, sidecarPath, { expectedName });
}

/**
 * Reads the sidecar of `archive` in `dir`, the hidden `.<archive>.sha256` first, then the
 * old `<archive>.sha256`, and returns its digest; null when neither exists. A malformed
 * sidecar throws {@link VerifyError}.
 *
 * @example
 * ```ts
 * const hex = await readSidecarOf("backups", "app-2025-07-01T10-30-00Z-vacuum.bck.gz");
 * ```
 */
export async function readSidecarOf(dir: string, archive: string): Promise<string | null> {
  for (const sidecar of sidecarNames(archive)) {
    try {
      return await readSidecar(join(dir, sidecar), archive);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return null;
}

/** Options for {@link parseSidecar}. */
export interface ParseSidecarOptions {
  /** The file name the sidecar must name; another one is a VerifyError. Default: any name. */
  expectedName?: string;
}

/**
 * Parses the text of a sidecar; `label` names it in errors; see {@link readSidecar}.
 *
 * @example
 * ```ts
 * parseSidecar(`${"a".repeat(64)}  app.bck.gz\n`, "app.bck.gz.sha256", { expectedName: "app.bck.gz" }); // "aaa…"
 * ```
 */
export function parseSidecar(text: string, label: string, options: ParseSidecarOptions = {}): string {
  const { expectedName } = options;
  // As sha256sum -c: blank lines and lines starting with "#" are comments.
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== "" && !line.startsWith("#"));
  const m = lines.length === 1 ? /^([0-9a-fA-F]{64}) [ *](.+?)\s*$/.exec(lines[0]) : null;
  if (!m) throw new VerifyError(`Checksum file "${label}" is malformed: expected "<sha256>  <file name>"`);
  if (expectedName !== undefined && m[2] !== expectedName) {
    throw new VerifyError(`Checksum file "${label}" names "${m[2]}", not "${expectedName}"`);
  }
  return m[1].toLowerCase();
}

/** Options for {@link verifyBackup}. */
export interface VerifyOptions {
  /** The expected SHA-256 of the file (from a sidecar). Default: read `.<file>.sha256` or `<file>.sha256` when present. */
  sha256?: string;
  /** Whether to look for the sidecar (`.<file>.sha256`, then `<file>.sha256`) when `sha256` is not given. Default true. */
  useSidecar?: boolean;
  /** Keep the decompressed database at this path (created new) instead of deleting it. */
  keepDatabaseAt?: string;
  /**
   * Directory for the temporary decompressed copy and its `.sqlbk-verify.lock` (where killed
   * runs' copies are swept). Default: the archive's directory. One this user cannot write
   * is a ConfigError (exit 2) naming it; there is no fallback to the system temp directory.
   */
  tempDir?: string;
  /** Cancels the check. */
  signal?: AbortSignal;
  /**
   * Whether the file is compressed. Default: what its first bytes say (gzip, zstd), else
   * what its name says (`.gz`, `.zst`). A name and content that disagree fail verification.
   */
  compressed?: boolean;
  /** `full` (everything `PRAGMA integrity_check` checks, on every core) or `quick` (`quick_check`). Default `full`. */
  check?: CheckLevel;
  /** Connections the check uses at once. Default: the number of cores. */
  jobs?: number;
}

/** What {@link verifyBackup} proved. */
export interface VerifyResult {
  /** The file checked. */
  path: string;
  /** SHA-256 of the file as stored. */
  sha256: string;
  /** Whether a checksum (given or from a sidecar) was compared. */
  checksumVerified: boolean;
  /** Size of the database inside. */
  databaseBytes: number;
  /** The archive's codec, or null for a plain database file. */
  codec: Codec | null;
  /** The check that ran. */
  check: CheckLevel;
  /** How long the check took, in ms. */
  checkMs: number;
}

/**
 * The codec of a backup file: its first bytes decide; a compressed name (`.gz`, `.zst`)
 * whose content is neither gzip nor zstd keeps the name's codec (and fails to
 * decompress); null means a plain database. Throws {@link VerifyError} when the name and
 * the content name different codecs.
 */
async function _codecOf(path: string, compressed: boolean | undefined): Promise<Codec | null> {
  if (compressed === false) return null;
  const named = codecOfName(basename(path));
  let found: Awaited<ReturnType<typeof detectFileFormat>>;
  try {
    found = await detectFileFormat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot read backup "${path}": no such file`, { cause: err });
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new Error(`Cannot read backup "${path}": permission denied (make it readable for this user)`, {
        cause: err,
      });
    }
    throw err;
  }
  if (found === "gzip" || found === "zstd") {
    if (named !== null && named !== found) {
      throw new VerifyError(`Backup "${path}" failed verification: its name says ${named} but it holds ${found} data`);
    }
    return found;
  }
  return named ?? (compressed ? "gzip" : null);
}

/** The VerifyError for a failed check, naming the check and what SQLite said. */
export function checkFailure(label: string, check: CheckResult): VerifyError {
  const what = check.level === "quick" ? "quick_check" : "integrity_check";
  return new VerifyError(
    `Backup "${label}" failed verification: ${what} returned ${check.messages.map((m) => `"${m}"`).join(", ")}`,
  );
}

/**
 * Verifies a backup file: the checksum when one is known, then (for archives) a full
 * decompression into a temp file, then the integrity check on every core. Throws
 * {@link VerifyError} with the reason on any failure; removes its temp files on every path.
 *
 * @example
 * ```ts
 * const r = await verifyBackup("backups/app-2025-07-01T10-30-00Z-vacuum.bck.zst", { check: "full" });
 * console.log(`${r.check} check in ${r.checkMs} ms`);
 * ```
 */
export async function verifyBackup(path: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  await assertBackupFile(path, "verify");
  const name = basename(path);
  let expected = options.sha256?.toLowerCase();
  if (expected === undefined && options.useSidecar !== false) {
    expected = (await readSidecarOf(dirname(path), name)) ?? undefined;
  }
  const codec = await _codecOf(path, options.compressed);
  let sha256: string;
  let databaseBytes: number;
  const tempDir = options.tempDir ?? dirname(path);
  const dbPath = options.keepDatabaseAt ??
    join(tempDir, `.sqlbk-verify-${crypto.randomUUID().slice(0, 8)}.db`);
  const copied = codec !== null || options.keepDatabaseAt !== undefined;
  let keep = false;
  // The directory of a temp file of our own is locked while we use it, and crashed runs'
  // temp files there are swept (a caller naming keepDatabaseAt looks after its own file).
  const lock = codec !== null && options.keepDatabaseAt === undefined
    ? await holdTempDir(tempDir, { path, given: options.tempDir !== undefined })
    : null;
  try {
    if (codec !== null) {
      try {
        const out = await decompressFile(path, dbPath, {
          codec: "auto",
          expect: codec,
          signal: options.signal,
          database: true,
        });
        sha256 = out.sha256;
        databaseBytes = out.outputBytes;
      } catch (err) {
        if (err instanceof Deno.errors.NotFound || (err as { code?: string }).code === "ENOENT") {
          throw new Error(`Cannot read backup "${path}": no such file`, { cause: err });
        }
        if (options.signal?.aborted) throw err;
        if (isOutputLimit(err)) {
          throw new VerifyError(`Backup "${path}" failed verification: ${errorMessage(err)}`, { cause: err });
        }
        if ((err as { code?: string }).code === LOW_SPACE_CODE) {
          throw new Error(`Cannot decompress "${path}" into "${dbPath}": ${errorMessage(err)}`, { cause: err });
        }
        if (isCorruptData(err)) {
          throw new VerifyError(
            `Backup "${path}" failed verification: the ${codec} data is corrupt or truncated (${errorMessage(err)})`,
            { cause: err },
          );
        }
        throw err;
      }
    } else {
      sha256 = await sha256File(path);
      databaseBytes = (await Deno.stat(path)).size;
      if (copied) {
        await Deno.copyFile(path, dbPath);
        await fsyncFile(dbPath);
      }
    }
    if (expected !== undefined && expected !== sha256) {
      throw new VerifyError(
        `Backup "${path}" failed verification: SHA-256 is ${sha256}, the checksum file says ${expected}`,
      );
    }
    const check = await checkDatabase(copied ? dbPath : path, {
      level: options.check,
      jobs: options.jobs,
      signal: options.signal,
    });
    if (!check.ok) throw checkFailure(path, check);
    keep = options.keepDatabaseAt !== undefined;
    if (keep) await toRollbackJournal(dbPath); // one file in DELETE mode, whatever the backup's header says
    return {
      path,
      sha256,
      checksumVerified: expected !== undefined,
      databaseBytes,
      codec,
      check: check.level,
      checkMs: check.durationMs,
    };
  } finally {
    if (copied && !keep) await removeIfExists(dbPath).catch(() => {});
    lock?.release();
  }
}

/**
 * Refuses (ConfigError, exit 2) a backup path that is a directory, and names the path
 * when it cannot be looked at; a missing file is left to the caller's own message.
 * `action` is the verb of the message (`verify`, `restore`).
 *
 * @example
 * ```ts
 * await assertBackupFile("backups/app-2025-07-01T10-30-00Z-online.bck.gz", "verify");
 * ```
 */
export async function assertBackupFile(path: string, action: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new Error(`Cannot read backup "${path}": permission denied (on it or a directory above it)`, {
        cause: err,
      });
    }
    return;
  }
  if (info.isDirectory) {
    throw new ConfigError(
      `Cannot ${action} "${path}": it is a directory; give ${
        action === "verify" ? "backup files" : "one backup file"
      }, e.g. ${join(path, "*.bck.gz")}`,
    );
  }
}

/** Options for {@link holdTempDir}. */
export interface HoldTempDirOptions {
  /** The backup being verified, named in errors. Required: no default. */
  path: string;
  /** Whether the caller chose the temp dir (else it is the backup's own directory). Required: no default. */
  given: boolean;
}

/**
 * {@link holdVerifyDir} on the directory of verification's temp copy, refusing (ConfigError,
 * exit 2) one this user cannot write with a message naming it and `options.path`.
 *
 * @example
 * ```ts
 * const lock = await holdTempDir("/var/tmp", { path: "/mnt/ro/app-2025-07-01T10-30-00Z-online.bck.gz", given: true });
 * lock.release();
 * ```
 */
export async function holdTempDir(tempDir: string, options: HoldTempDirOptions): Promise<DirectoryLock> {
  const { path, given } = options;
  try {
    return await holdVerifyDir(tempDir);
  } catch (err) {
    const refusal = writeRefusal(err);
    if (err instanceof Deno.errors.NotFound && given) {
      throw new ConfigError(`Invalid temp dir "${tempDir}": it does not exist (create it, or choose another)`, {
        cause: err,
      });
    }
    if (refusal === null) throw err;
    throw new ConfigError(
      given
        ? `Cannot verify "${path}": cannot write in the temp dir "${tempDir}" (${refusal}); choose a writable one`
        : `Cannot verify "${path}": cannot write in its directory "${tempDir}" (${refusal}), where the ` +
          `decompressed copy is checked; give --temp-dir DIR, a writable directory with room for the database`,
      { cause: err },
    );
  }
}
