/**
 * Backup file names: formatting the name a backup is published under, parsing the
 * grammars found on servers, and choosing the latest backup of each database.
 *
 * @module
 */

import { type Codec, CODEC_EXTENSIONS } from "./codecs/levels.ts";

/** A backup file name taken apart. */
export interface BackupName {
  /** The file name as given. */
  name: string;
  /** The database it belongs to: the source's stem, or the id in the short grammar. */
  database: string;
  /** When the backup job started (UTC). */
  time: Date;
  /** The strategy, when the name carries one (`online`, `vacuum`, ...). */
  strategy: string | null;
  /** Whether the file is an archive (`.bck.gz`, `.bck.zst`) rather than a plain `.db` snapshot. */
  compressed: boolean;
  /** The archive's codec by its extension (`.gz` gzip, `.zst` zstd), or null for a plain `.db`. */
  codec: Codec | null;
  /** Which grammar matched: `dashed` (ours), `compact`, or `id`. */
  grammar: "dashed" | "compact" | "id";
}

const _DASHED = /^(.+)-(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})Z-([A-Za-z0-9_]+)\.bck\.(gz|zst)$/;
const _COMPACT = /^(.+)-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-([A-Za-z0-9_]+)\.bck\.(gz|zst)$/;
const _ID = /^(.+)-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z(?:\.bck\.(gz|zst)|\.db)$/;
const _CODECS: Record<string, Codec> = { gz: "gzip", zst: "zstd" };

function _pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/**
 * The UTC timestamp as it appears in our names: `YYYY-MM-DDTHH-MM-SSZ`.
 *
 * @example
 * ```ts
 * formatTimestamp(new Date("2025-07-01T10:30:00Z")); // "2025-07-01T10-30-00Z"
 * ```
 */
export function formatTimestamp(time: Date): string {
  return `${_pad(time.getUTCFullYear(), 4)}-${_pad(time.getUTCMonth() + 1)}-${_pad(time.getUTCDate())}T` +
    `${_pad(time.getUTCHours())}-${_pad(time.getUTCMinutes())}-${_pad(time.getUTCSeconds())}Z`;
}

/**
 * The stem of a database file: its file name minus the last extension.
 *
 * @example
 * ```ts
 * databaseStem("/srv/data/app.db"); // "app"
 * databaseStem("data.tar.db"); // "data.tar"
 * ```
 */
export function databaseStem(sourcePath: string): string {
  const base = sourcePath.split(/[\\/]/).filter((p) => p !== "").pop() ?? "";
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(0, dot) : base;
}

/** Options for {@link formatBackupName}. */
export interface BackupNameOptions {
  /** The strategy the name carries (`online`, `vacuum`, ...). Required: no default. */
  strategy: string;
  /** The archive's codec, which picks the extension (`.bck.gz`, `.bck.zst`). Default: `"gzip"`. */
  codec?: Codec;
}

/**
 * The name a backup is published under: `<stem>-<YYYY-MM-DDTHH-MM-SSZ>-<strategy>.bck.gz`,
 * or `.bck.zst` for a zstd archive.
 *
 * @example
 * ```ts
 * formatBackupName("app", new Date("2025-07-01T10:30:00Z"), { strategy: "vacuum" });
 * // "app-2025-07-01T10-30-00Z-vacuum.bck.gz"
 * formatBackupName("app", new Date("2025-07-01T10:30:00Z"), { strategy: "online", codec: "zstd" });
 * // "app-2025-07-01T10-30-00Z-online.bck.zst"
 * ```
 */
export function formatBackupName(stem: string, time: Date, options: BackupNameOptions): string {
  const { strategy, codec = "gzip" } = options;
  if (stem === "" || /[\\/]/.test(stem)) throw new Error(`Invalid database name "${stem}": it must be a file name`);
  return `${stem}-${formatTimestamp(time)}-${strategy}.bck${CODEC_EXTENSIONS[codec]}`;
}

function _date(parts: string[]): Date | null {
  const [y, mo, d, h, mi, s] = parts.map(Number);
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  // Reject impossible dates (month 13, Feb 30, hour 25) instead of letting Date roll over.
  if (
    date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d ||
    date.getUTCHours() !== h || date.getUTCMinutes() !== mi || date.getUTCSeconds() !== s
  ) return null;
  return date;
}

/**
 * Parses a backup file name in any of the three grammars; returns null for anything else
 * (temp files, `.partial` downloads, `.sha256` sidecars, hidden and foreign files).
 *
 * @example
 * ```ts
 * parseBackupName("app-2025-07-01T10-30-00Z-vacuum.bck.gz")?.database; // "app"
 * parseBackupName("app-2025-07-01T10-30-00Z-vacuum.bck.gz.tmp"); // null
 * ```
 */
export function parseBackupName(name: string): BackupName | null {
  if (name.startsWith(".") || /[\\/]/.test(name)) return null;
  for (const [re, grammar] of [[_DASHED, "dashed"], [_COMPACT, "compact"], [_ID, "id"]] as const) {
    const m = re.exec(name);
    if (!m) continue;
    const time = _date(m.slice(2, 8));
    if (!time) return null;
    if (grammar === "id") {
      const codec = m[8] === undefined ? null : _CODECS[m[8]];
      return { name, database: m[1], time, strategy: null, compressed: codec !== null, codec, grammar };
    }
    return { name, database: m[1], time, strategy: m[8], compressed: true, codec: _CODECS[m[9]], grammar };
  }
  return null;
}

/**
 * Groups names by database and keeps the newest of each, by the timestamp in the name.
 * Names that do not parse, and names dated in the future (see {@link isFromTheFuture}),
 * are ignored. Ties (same second) go to the name that sorts last.
 *
 * @example
 * ```ts
 * const latest = latestPerDatabase(["app-2025-07-01T10-30-00Z-vacuum.bck.gz", "notes.txt"]);
 * latest.get("app")?.name; // "app-2025-07-01T10-30-00Z-vacuum.bck.gz"
 * ```
 */
export function latestPerDatabase(names: Iterable<string>, now: number = Date.now()): Map<string, BackupName> {
  const latest = new Map<string, BackupName>();
  for (const name of names) {
    const parsed = parseBackupName(name);
    if (!parsed || isFromTheFuture(parsed, now)) continue;
    const best = latest.get(parsed.database);
    if (!best || compareBackupNames(parsed, best) > 0) latest.set(parsed.database, parsed);
  }
  return latest;
}

/** Orders two parsed names by time, then by name; for sorting oldest first. */
export function compareBackupNames(a: BackupName, b: BackupName): number {
  const dt = a.time.getTime() - b.time.getTime();
  if (dt !== 0) return dt;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Every parsed backup of each database, oldest first.
 *
 * @example
 * ```ts
 * groupByDatabase(["a-20250701T103000Z.db"]).get("a")?.length; // 1
 * ```
 */
export function groupByDatabase(names: Iterable<string>): Map<string, BackupName[]> {
  const groups = new Map<string, BackupName[]>();
  for (const name of names) {
    const parsed = parseBackupName(name);
    if (!parsed) continue;
    const list = groups.get(parsed.database) ?? [];
    list.push(parsed);
    groups.set(parsed.database, list);
  }
  for (const list of groups.values()) list.sort(compareBackupNames);
  return groups;
}

/**
 * The sidecar sqlbk writes beside an archive: `.<archive>.sha256`, hidden, so that in a
 * backup directory of one database the newest archive is also the name that sorts last
 * (the Go client's rule). Its text is `<sha256>  <archive>`, so `sha256sum -c` reads it.
 *
 * @example
 * ```ts
 * sidecarName("app-2025-07-01T10-30-00Z-vacuum.bck.gz"); // ".app-2025-07-01T10-30-00Z-vacuum.bck.gz.sha256"
 * ```
 */
export function sidecarName(archive: string): string {
  return `.${archive}.sha256`;
}

/**
 * Every name a sidecar of `archive` may have, the one sqlbk writes first, then the
 * `<archive>.sha256` of earlier versions (and of other tools), which readers still accept.
 *
 * @example
 * ```ts
 * sidecarNames("app.bck.gz"); // [".app.bck.gz.sha256", "app.bck.gz.sha256"]
 * ```
 */
export function sidecarNames(archive: string): string[] {
  return [sidecarName(archive), `${archive}.sha256`];
}

/**
 * The hidden temp name an archive is written under before it is published: `.<archive>.tmp`.
 *
 * @example
 * ```ts
 * archiveTempName("app-2025-07-01T10-30-00Z-vacuum.bck.gz"); // ".app-2025-07-01T10-30-00Z-vacuum.bck.gz.tmp"
 * ```
 */
export function archiveTempName(archive: string): string {
  return `.${archive}.tmp`;
}

/**
 * How far in the future a backup's name may be dated and still count (clock skew between
 * a server and this machine): 10 minutes. A backup dated later is never chosen as the
 * newest and never counts for retention.
 */
export const FUTURE_SKEW_MS = 10 * 60_000;

/**
 * Whether a backup is dated further in the future than {@link FUTURE_SKEW_MS} from `now`
 * (Unix ms, default: the clock). Such names come from a clock that jumped or from a
 * hostile server; they are skipped when choosing the newest and by retention.
 *
 * @example
 * ```ts
 * isFromTheFuture(parseBackupName("app-2099-01-01T00-00-00Z-online.bck.gz")!); // true
 * ```
 */
export function isFromTheFuture(backup: BackupName, now: number = Date.now()): boolean {
  return backup.time.getTime() > now + FUTURE_SKEW_MS;
}

/**
 * Splits each database's backups (as {@link groupByDatabase} returns them, oldest first)
 * into those that count and those dated in the future (see {@link isFromTheFuture}).
 * The newest backup of a database is the last of its `current` list.
 *
 * @example
 * ```ts
 * const { current, future } = splitFuture(groupByDatabase(["app-2099-01-01T00-00-00Z-online.bck.gz"]));
 * current.get("app"); // undefined
 * future[0].name; // "app-2099-01-01T00-00-00Z-online.bck.gz"
 * ```
 */
export function splitFuture(
  groups: Map<string, BackupName[]>,
  now: number = Date.now(),
): { current: Map<string, BackupName[]>; future: BackupName[] } {
  const current = new Map<string, BackupName[]>();
  const future: BackupName[] = [];
  for (const [database, list] of groups) {
    const ok = list.filter((b) => !isFromTheFuture(b, now));
    future.push(...list.filter((b) => isFromTheFuture(b, now)));
    if (ok.length > 0) current.set(database, ok);
  }
  return { current, future };
}
