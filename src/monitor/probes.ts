/**
 * Restore probes: SQL statements run read-only on a verified copy of a backup, after
 * its integrity check, each of which must return one row whose first value is true
 * (SQLite's 1) or another non-zero number, e.g. `SELECT count(*) > 0 FROM users`. A
 * probe that returns anything else, or fails, fails the verification (exit 3).
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { Database, type SqlValue } from "../sqlite/database.ts";
import { errorMessage, VerifyError } from "../errors.ts";
import { exists, removeIfExists } from "../fs.ts";
import { assertBackupFile, holdTempDir, verifyBackup, type VerifyOptions, type VerifyResult } from "../verify.ts";
import { checkProbes } from "./probe_check.ts";

function _show(value: SqlValue): string {
  if (value === null) return "NULL";
  if (value instanceof Uint8Array) return `a ${value.byteLength}-byte blob`;
  if (typeof value === "string") return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
  return String(value);
}

function _passes(value: SqlValue): boolean {
  return (typeof value === "number" && value !== 0 && !Number.isNaN(value)) ||
    (typeof value === "bigint" && value !== 0n);
}

/**
 * Runs each probe on the database at `dbPath` (opened read-only, with `query_only` on)
 * and resolves when all pass. Throws a {@link VerifyError} naming the first probe that
 * does not pass and what it returned, or a `ConfigError` for a probe that
 * `probeProblem` refuses (before anything is opened). `label` names the backup in the message.
 *
 * @example
 * ```ts
 * await runProbes("restored.db", ["SELECT count(*) > 0 FROM users"], { label: "app-2025-07-01T10-30-00Z-online.bck.gz" });
 * ```
 */
export async function runProbes(dbPath: string, probes: string[], options: { label?: string } = {}): Promise<void> {
  if (probes.length === 0) return;
  checkProbes(probes, "probe");
  const what = `Backup "${options.label ?? dbPath}" failed verification`;
  let db: Database;
  try {
    db = new Database(dbPath, { mode: "readonly", immutable: true });
  } catch (err) {
    throw new VerifyError(`${what}: cannot open it to run probes: ${errorMessage(err)}`, { cause: err });
  }
  try {
    db.exec("PRAGMA query_only = ON");
    for (const probe of probes) {
      let rows;
      try {
        rows = await db.queryAsync(probe);
      } catch (err) {
        throw new VerifyError(`${what}: probe "${probe}" failed: ${errorMessage(err)}`, { cause: err });
      }
      if (rows.length !== 1) {
        throw new VerifyError(
          `${what}: probe "${probe}" returned ${rows.length} rows; it must return one row whose first value is true`,
        );
      }
      const first = Object.values(rows[0])[0];
      if (first === undefined || !_passes(first)) {
        throw new VerifyError(
          `${what}: probe "${probe}" returned ${first === undefined ? "no columns" : _show(first)}, not true`,
        );
      }
    }
  } finally {
    db.close();
  }
}

/**
 * {@link verifyBackup}, then {@link runProbes} on the verified copy: the decompressed
 * database in a temp file beside the archive (removed afterwards), or a plain `.db`
 * snapshot itself.
 *
 * @example
 * ```ts
 * await verifyWithProbes("backups/app-2025-07-01T10-30-00Z-vacuum.bck.gz", ["SELECT count(*) > 0 FROM users"]);
 * ```
 */
export async function verifyWithProbes(
  path: string,
  probes: string[],
  options: Omit<VerifyOptions, "keepDatabaseAt"> = {},
): Promise<VerifyResult> {
  checkProbes(probes, "probe");
  await assertBackupFile(path, "verify");
  const tempDir = options.tempDir ?? dirname(path);
  const copy = join(tempDir, `.sqlbk-probe-${crypto.randomUUID().slice(0, 8)}.db`);
  const lock = await holdTempDir(tempDir, { path, given: options.tempDir !== undefined }); // kept until the probes ran on the copy
  try {
    const result = await verifyBackup(path, { ...options, keepDatabaseAt: copy });
    await runProbes((await exists(copy)) ? copy : path, probes, { label: basename(path) });
    return result;
  } finally {
    await removeIfExists(copy).catch(() => {});
    lock.release();
  }
}
