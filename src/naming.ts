/**
 * Backup file names: formatting the name a backup is published under, parsing the
 * grammars found on servers, and choosing the latest backup of each database.
 *
 * @module
 */

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
  /** Whether the file is a gzip archive (`.bck.gz`) rather than a plain `.db` snapshot. */
  compressed: boolean;
  /** Which grammar matched: `dashed` (ours), `compact`, or `id`. */
  grammar: "dashed" | "compact" | "id";
}

const _DASHED = /^(.+)-(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})Z-([A-Za-z0-9_]+)\.bck\.gz$/;
const _COMPACT = /^(.+)-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-([A-Za-z0-9_]+)\.bck\.gz$/;
const _ID = /^(.+)-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z(\.bck\.gz|\.db)$/;

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

/**
 * The name a backup is published under: `<stem>-<YYYY-MM-DDTHH-MM-SSZ>-<strategy>.bck.gz`.
 *
 * @example
 * ```ts
 * formatBackupName("app", new Date("2025-07-01T10:30:00Z"), "vacuum");
 * // "app-2025-07-01T10-30-00Z-vacuum.bck.gz"
 * ```
 */
export function formatBackupName(stem: string, time: Date, strategy: string): string {
  if (stem === "" || /[\\/]/.test(stem)) throw new Error(`Invalid database name "${stem}": it must be a file name`);
  return `${stem}-${formatTimestamp(time)}-${strategy}.bck.gz`;
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
    const tail = m[8];
    if (grammar === "id") {
      return { name, database: m[1], time, strategy: null, compressed: tail === ".bck.gz", grammar };
    }
    return { name, database: m[1], time, strategy: tail, compressed: true, grammar };
  }
  return null;
}

/**
 * Groups names by database and keeps the newest of each, by the timestamp in the name.
 * Names that do not parse are ignored. Ties (same second) go to the name that sorts last.
 *
 * @example
 * ```ts
 * const latest = latestPerDatabase(["app-2025-07-01T10-30-00Z-vacuum.bck.gz", "notes.txt"]);
 * latest.get("app")?.name; // "app-2025-07-01T10-30-00Z-vacuum.bck.gz"
 * ```
 */
export function latestPerDatabase(names: Iterable<string>): Map<string, BackupName> {
  const latest = new Map<string, BackupName>();
  for (const name of names) {
    const parsed = parseBackupName(name);
    if (!parsed) continue;
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
