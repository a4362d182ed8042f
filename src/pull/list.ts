/**
 * Listing backups, in a local directory or on an SFTP server: database, time, strategy,
 * size, and for local files whether sqlbk verified them (a `.sha256` sidecar beside the
 * file, which `sqlbk pull` writes only after verification).
 *
 * @module
 */

import { join } from "node:path";
import { compareBackupNames, parseBackupName } from "../naming.ts";
import { parseTarget, type Target } from "./target.ts";
import { type ConnectOptions, connectTarget, type RemoteEntry } from "./transport.ts";

/** One backup in a listing. */
export interface BackupEntry {
  /** The database. */
  database: string;
  /** File name. */
  file: string;
  /** The time in the name (UTC, ISO 8601). */
  time: string;
  /** The strategy in the name, or null for the short grammar. */
  strategy: string | null;
  /** Size in bytes. */
  bytes: number;
  /** Local files: whether a `.sha256` sidecar is beside it. Remote files: null. */
  verified: boolean | null;
  /** Whether it is the newest backup of its database. */
  latest: boolean;
}

/**
 * Turns directory entries into a listing: backups only, grouped by database (sorted by
 * name), oldest first within each.
 *
 * @example
 * ```ts
 * const rows = backupEntries([{ name: "app-20250701T103000Z.db", size: 10, mtime: 0, isFile: true }], null);
 * ```
 */
export function backupEntries(entries: RemoteEntry[], sidecars: Set<string> | null): BackupEntry[] {
  const parsed = entries.filter((e) => e.isFile).map((e) => ({ e, p: parseBackupName(e.name) }))
    .filter((x): x is { e: RemoteEntry; p: NonNullable<ReturnType<typeof parseBackupName>> } => x.p !== null);
  parsed.sort((a, b) =>
    a.p.database < b.p.database ? -1 : a.p.database > b.p.database ? 1 : compareBackupNames(a.p, b.p)
  );
  return parsed.map(({ e, p }, i) => ({
    database: p.database,
    file: p.name,
    time: p.time.toISOString(),
    strategy: p.strategy,
    bytes: e.size,
    verified: sidecars === null ? null : sidecars.has(`${p.name}.sha256`),
    latest: i === parsed.length - 1 || parsed[i + 1].p.database !== p.database,
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
  return backupEntries(entries, names);
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
    return backupEntries(await session.list(t.remoteDir), null);
  } finally {
    await session.close();
  }
}
