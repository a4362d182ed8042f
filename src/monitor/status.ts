/**
 * Backup freshness: for each database in a listing (local or remote, the rules of
 * `sqlbk list`), its newest backup by the timestamp in its name, that backup's age, and
 * whether it is fresh, stale (older than `max_age`) or missing (named in the config but
 * without a single backup). Ages come from the names, never from file times.
 *
 * @module
 */

import type { BackupEntry } from "../pull/list.ts";
import { parseDuration } from "../duration.ts";
import { DEFAULT_MAX_AGE } from "./monitor_config.ts";

/** `fresh`, `stale` (newest backup older than max age) or `missing` (no backup at all). */
export type Freshness = "fresh" | "stale" | "missing";

/** The newest backup of a database. */
export interface NewestBackup {
  /** File name. */
  file: string;
  /** The time in its name (UTC, ISO 8601). */
  time: string;
  /** Seconds from that time to the check (negative for a name in the future). */
  ageSeconds: number;
  /** Size in bytes. */
  bytes: number;
  /** The strategy in the name, or null for the short grammar. */
  strategy: string | null;
  /** `gzip` (`.gz`), `zstd` (`.zst`) or `none` (a plain `.db` snapshot). */
  codec: "gzip" | "zstd" | "none";
  /**
   * Local files: whether a `.sha256` sidecar marks it verified. Remote files: whether the
   * pull host's local directory holds it verified, or null when unknown.
   */
  verified: boolean | null;
  /** Local files: the check a pull's mark records (`full`, `quick`), else null. */
  verifiedCheck?: "full" | "quick" | null;
  /** Local files: whether a checksum file is beside it (a server's directory has one per backup). Remote: null. */
  checksum?: boolean | null;
}

/** The state of one database's backups in one location. */
export interface DatabaseStatus {
  /** The database name (as in the file names). */
  database: string;
  /** The directory or remote target looked at. */
  location: string;
  /** Fresh, stale or missing. */
  state: Freshness;
  /** The max age it was held to, in seconds. */
  maxAgeSeconds: number;
  /** The newest backup, or null when missing. */
  newest: NewestBackup | null;
  /** How many backups there are. */
  backups: number;
  /** Their total size in bytes. */
  totalBytes: number;
  /** Every backup, oldest first: time (ISO) and size, for charts. */
  history: { time: string; bytes: number }[];
}

/** Options for {@link backupStatus}. */
export interface StatusOptions {
  /** The time of the check, Unix ms. Default: now. */
  now?: number;
  /** The max age of a database's newest backup, in ms, per database. Default: 25 hours for all. */
  maxAgeMs?: number | ((database: string) => number);
  /** Databases that must have backups here: reported `missing` when they have none. Default: none. */
  expected?: string[];
}

/**
 * The codec of a backup file, from its name.
 *
 * @example
 * ```ts
 * codecOf("app-2025-07-01T10-30-00Z-online.bck.gz"); // "gzip"
 * ```
 */
export function codecOf(file: string): NewestBackup["codec"] {
  return /\.zst$/i.test(file) ? "zstd" : /\.gz$/i.test(file) ? "gzip" : "none";
}

/**
 * Summarizes a listing (as `listBackups()` or `listRemoteBackups()` return it) per
 * database, sorted by name.
 *
 * @example
 * ```ts
 * import { listBackups } from "../pull/list.ts";
 * const rows = backupStatus(await listBackups("/var/backups/app"), "/var/backups/app", { expected: ["app"] });
 * if (rows.some((r) => r.state !== "fresh")) Deno.exitCode = 1;
 * ```
 */
export function backupStatus(entries: BackupEntry[], location: string, options: StatusOptions = {}): DatabaseStatus[] {
  const now = options.now ?? Date.now();
  const maxAge = options.maxAgeMs ?? parseDuration(DEFAULT_MAX_AGE);
  const maxAgeOf = typeof maxAge === "function" ? maxAge : () => maxAge;
  const groups = new Map<string, BackupEntry[]>();
  for (const name of options.expected ?? []) groups.set(name, []);
  for (const e of entries) {
    const list = groups.get(e.database) ?? [];
    list.push(e); // listings come oldest first within a database
    groups.set(e.database, list);
  }
  const out: DatabaseStatus[] = [];
  for (const database of [...groups.keys()].sort()) {
    const list = groups.get(database)!;
    const maxAgeMs = maxAgeOf(database);
    const last = list.find((e) => e.latest); // never a backup dated in the future
    let newest: NewestBackup | null = null;
    let state: Freshness = "missing";
    if (last) {
      const ageSeconds = Math.floor((now - Date.parse(last.time)) / 1000);
      newest = {
        file: last.file,
        time: last.time.replace(".000Z", "Z"),
        ageSeconds,
        bytes: last.bytes,
        strategy: last.strategy,
        codec: codecOf(last.file),
        verified: last.verified,
        verifiedCheck: last.verifiedCheck ?? null,
        checksum: last.checksum ?? null,
      };
      state = ageSeconds * 1000 > maxAgeMs ? "stale" : "fresh";
    }
    out.push({
      database,
      location,
      state,
      maxAgeSeconds: Math.floor(maxAgeMs / 1000),
      newest,
      backups: list.length,
      totalBytes: list.reduce((sum, e) => sum + e.bytes, 0),
      history: list.map((e) => ({ time: e.time.replace(".000Z", "Z"), bytes: e.bytes })),
    });
  }
  return out;
}

/**
 * An age in seconds as a short text: `45s`, `12m`, `5h12m`, `3d4h`; a negative age (a
 * backup dated ahead of this clock, within the allowed skew) as `in 3m`.
 *
 * @example
 * ```ts
 * formatAge(93_600); // "26h0m"
 * formatAge(-180); // "in 3m"
 * ```
 */
export function formatAge(seconds: number): string {
  if (seconds < 0) return `in ${formatAge(-seconds)}`;
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 72 * 3600) return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d${Math.floor((seconds % 86400) / 3600)}h`;
}
