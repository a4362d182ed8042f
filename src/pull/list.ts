/**
 * Listing backups, in a local directory or on an SFTP server: database, time, strategy,
 * size, and for local files whether they have a checksum file and whether `sqlbk pull`
 * verified them (its `<file>.sha256`, written only after verification, with the check
 * that ran; see {@link ../verified_marker.ts}).
 *
 * @module
 */

import { join } from "node:path";
import { compareBackupNames, isFromTheFuture, parseBackupName, sidecarNames } from "../naming.ts";
import type { CheckLevel } from "../integrity.ts";
import { readVerifiedMarker } from "../verified_marker.ts";
import { parseTarget, type Target } from "./target.ts";
import { type ConnectOptions, connectTarget, type RemoteEntry } from "./transport.ts";

/** One backup in a listing. */
export interface BackupEntry {
  /** The database. */
  database: string;
  /** File name. */
  file: string;
  /** The time in the name, UTC, whole seconds: `YYYY-MM-DDTHH:MM:SSZ`. */
  time: string;
  /** The strategy in the name, or null for the short grammar. */
  strategy: string | null;
  /** The archive's codec by its name (`gzip`, `zstd`), or null for a plain `.db`; listings always set it. */
  codec?: "gzip" | "zstd" | null;
  /** Size in bytes. */
  bytes: number;
  /**
   * Local files: whether `sqlbk pull` verified it (its mark, `<file>.sha256` with the line
   * `# verified by sqlbk pull: check=...`). A checksum file alone (the server's) is not
   * verification. Remote files: null.
   */
  verified: boolean | null;
  /** Local files: the check the pull ran (`full`, `quick`), or null when not verified. Remote files: null. */
  verifiedCheck?: CheckLevel | null;
  /** Local files: whether a checksum file (`.<file>.sha256` or `<file>.sha256`) is beside it. Remote files: null. */
  checksum?: boolean | null;
  /** Whether it is the newest backup of its database (never one dated in the future). */
  latest: boolean;
  /** Whether its name is dated further in the future than the clock-skew allowance (see `isFromTheFuture`). */
  future?: boolean;
}

/**
 * The VERIFIED cell of `sqlbk list` and `sqlbk status`: the check a pull's mark records
 * (`full`, `quick`), `checksum` for a file with only a checksum file beside it, `no`, or
 * `-` when unknown (remote, or no backup).
 *
 * @example
 * ```ts
 * verifiedLabel({ verified: false, checksum: true }); // "checksum"
 * ```
 */
export function verifiedLabel(
  entry: Pick<BackupEntry, "verified" | "verifiedCheck" | "checksum"> | null | undefined,
): string {
  if (!entry || entry.verified === null) return "-";
  if (entry.verified) return entry.verifiedCheck ?? "yes";
  return entry.checksum ? "checksum" : "no";
}

/** What {@link backupEntries} knows besides the entries. */
export interface ListingContext {
  /**
   * Local listings: every name in the directory (to see checksum files beside backups).
   * Absent for a remote listing: `verified`, `verifiedCheck` and `checksum` are then null.
   */
  names?: Set<string>;
  /** Local listings: the check each backup a pull verified passed, by file name. */
  verifiedBy?: Map<string, CheckLevel>;
  /** The time names from the future are judged against, Unix ms. Default: now. */
  now?: number;
}

/**
 * Turns directory entries into a listing: backups only, grouped by database (sorted by
 * name), oldest first within each. The newest of each database that is not dated in the
 * future is marked `latest`.
 *
 * @example
 * ```ts
 * const rows = backupEntries([{ name: "app-20250701T103000Z.db", size: 10, mtime: 0, isFile: true }]);
 * ```
 */
export function backupEntries(entries: RemoteEntry[], context: ListingContext = {}): BackupEntry[] {
  const sidecars = context.names ?? null;
  const verifiedBy = context.verifiedBy ?? new Map<string, CheckLevel>();
  const now = context.now ?? Date.now();
  const parsed = entries.filter((e) => e.isFile).map((e) => ({ e, p: parseBackupName(e.name) }))
    .filter((x): x is { e: RemoteEntry; p: NonNullable<ReturnType<typeof parseBackupName>> } => x.p !== null);
  parsed.sort((a, b) =>
    a.p.database < b.p.database ? -1 : a.p.database > b.p.database ? 1 : compareBackupNames(a.p, b.p)
  );
  const newest = new Map<string, string>();
  for (const { p } of parsed) if (!isFromTheFuture(p, now)) newest.set(p.database, p.name);
  return parsed.map(({ e, p }) => ({
    database: p.database,
    file: p.name,
    time: p.time.toISOString().replace(/\.\d{3}Z$/, "Z"), // whole seconds, as in the names
    strategy: p.strategy,
    codec: p.codec,
    bytes: e.size,
    verified: sidecars === null ? null : verifiedBy.has(p.name),
    verifiedCheck: sidecars === null ? null : verifiedBy.get(p.name) ?? null,
    checksum: sidecars === null ? null : sidecarNames(p.name).some((n) => sidecars.has(n)),
    latest: newest.get(p.database) === p.name,
    future: isFromTheFuture(p, now),
  }));
}

/**
 * Lists the backups in a local directory.
 *
 * @example
 * ```ts
 * for (const b of await listBackups("/srv/pulled")) console.log(b.database, b.time, b.verified);
 * ```
 */
export async function listBackups(dir: string): Promise<BackupEntry[]> {
  const entries: RemoteEntry[] = [];
  const names = new Set<string>();
  for await (const e of Deno.readDir(dir)) {
    names.add(e.name);
    if (!e.isFile) continue;
    const st = await Deno.lstat(join(dir, e.name)).catch(() => null);
    if (!st) continue;
    entries.push({ name: e.name, size: st.size, mtime: Math.floor((st.mtime?.getTime() ?? 0) / 1000), isFile: true });
  }
  const verifiedBy = new Map<string, CheckLevel>();
  for (const e of entries) {
    if (!names.has(`${e.name}.sha256`) || parseBackupName(e.name) === null) continue;
    const mark = await readVerifiedMarker(dir, e.name).catch(() => null);
    if (mark) verifiedBy.set(e.name, mark.check);
  }
  return backupEntries(entries, { names, verifiedBy });
}

/**
 * Lists the backups in a remote directory over SFTP.
 *
 * @example
 * ```ts
 * const rows = await listRemoteBackups("backup@db1:/var/backups/app", { knownHostsFile: "known_hosts" });
 * ```
 */
export async function listRemoteBackups(
  target: string | Target,
  options: Omit<ConnectOptions, "host"> = {},
): Promise<BackupEntry[]> {
  const t = typeof target === "string" ? parseTarget(target) : target;
  const session = await connectTarget(t, options);
  try {
    return backupEntries(await session.list(t.remoteDir));
  } finally {
    await session.close();
  }
}
