/**
 * `sqlbk status`: how fresh the backups are, per database, in local directories or on
 * servers; an exit code for cron and Nagios-style checks, JSON, metrics and a page.
 *
 * @module
 */

import { parseFlags } from "../args.ts";
import { formatBytes } from "../progress.ts";
import { CONNECTION_FLAGS, CONNECTION_HELP, connectionOptions } from "./pull.ts";
import { REPORT_FLAGS, REPORT_HELP, reportTargets, warn } from "../monitor.ts";
import { loadConfig, type SqlbkConfig } from "../../src/config.ts";
import { parseDuration } from "../../src/duration.ts";
import { ConfigError, errorMessage, ExitCode } from "../../src/errors.ts";
import { databaseStem } from "../../src/naming.ts";
import { type BackupEntry, listBackups, listRemoteBackups, verifiedLabel } from "../../src/pull/list.ts";
import { parsePullTable } from "../../src/pull/pull_config.ts";
import { isRemoteTarget, parseTarget } from "../../src/pull/target.ts";
import { renderStatusPage } from "../../src/monitor/html.ts";
import { rewriteLocked } from "../../src/monitor/locked_write.ts";
import type { FreshnessSample } from "../../src/monitor/metrics.ts";
import { DEFAULT_MAX_AGE } from "../../src/monitor/monitor_config.ts";
import { reportRun } from "../../src/monitor/report.ts";
import { backupStatus, type DatabaseStatus, formatAge } from "../../src/monitor/status.ts";
import { printable, safeJson } from "../../src/printable.ts";
import { listingError } from "../local_listing.ts";

/** One line for the command list. */
export const summary = "Say how fresh the backups are: exit 1 when any is stale or missing";

/** The help text. */
export const help = `sqlbk status: for each database in each local directory or remote target (the listing and
naming rules of "sqlbk list"), its newest backup by the timestamp in its name (file, time,
age, size, strategy, codec), whether it is verified (as "sqlbk list" shows it: full or quick
for a copy a pull verified, checksum for one with only a checksum file beside it, as on a
server, else no; for a remote TARGET, whether the --config's [pull] local_dir holds it
verified, else unknown), how many backups there are and their total size.
A database is stale when its newest backup is older than its max age, and missing when the
config names it but it has no backup at all. Ages come from the names, never from file times.

Usage:
  sqlbk status DIR|TARGET... [options]
  sqlbk status --config FILE [options]

With --config and no DIR, it looks at each database's backup_dir (the databases of the
config must be there) and at the [pull] table's local_dir (its "databases" must be there).
A remote TARGET uses the [pull] table's connection settings (port, user, identity_file,
known_hosts), which flags override.

Options:
  -c, --config FILE          TOML config: locations, per-database max_age, metrics_file, heartbeat_url
      --max-age DUR          stale when the newest backup is older, Go duration (default: the
                             database's max_age in the config, else top-level max_age, else ${DEFAULT_MAX_AGE})
      --json                 print one JSON object per database on stdout:
                             {"database","location","state","fresh","maxAgeSeconds","newest":
                             {"file","time","ageSeconds","bytes","strategy","codec","verified",
                             "verifiedCheck","checksum"} or
                             null,"backups","totalBytes"}; a location that yields no database:
                             {"database":null,"state":"empty"|"unreadable",...,"error"}
      --html FILE            also write a self-contained status page (badges, newest backups,
                             size and time-of-day charts of the last 30 backups), atomically
${REPORT_HELP}
${CONNECTION_HELP}
  -h, --help                 show this help

Exit codes: 0 every database fresh, 1 any stale or missing (or a location could not be
read, or holds no backup at all), 2 usage or configuration error (also a DIR that is not a
directory).

Examples:
  sqlbk status /var/backups/app --max-age 26h
  sqlbk status --config /etc/sqlbk.toml --metrics-file /var/lib/prometheus/node-exporter/sqlbk.prom
  sqlbk status backup@db1.example.com:/var/backups/app --json
  sqlbk status /srv/pulled/app --html /var/www/html/backups.html
`;

interface _Location {
  where: string;
  expected: string[];
  /** From the config: a missing directory means missing databases, not an error. */
  fromConfig: boolean;
}

function _locations(positionals: string[], cfg: SqlbkConfig | undefined): _Location[] {
  if (positionals.length > 0) return positionals.map((where) => ({ where, expected: [], fromConfig: false }));
  if (!cfg) {
    throw new ConfigError(`Nothing to check: give a DIR or TARGET, or --config FILE (see "sqlbk status --help")`);
  }
  const byDir = new Map<string, string[]>();
  for (const db of cfg.databases) {
    byDir.set(db.backupDir, [...(byDir.get(db.backupDir) ?? []), databaseStem(db.sourcePath)]);
  }
  const out = [...byDir].map(([where, expected]) => ({ where, expected, fromConfig: true }));
  const table = parsePullTable(cfg.pull, cfg.origin);
  if (table.localDir !== undefined) {
    out.push({ where: table.localDir, expected: table.databases ?? [], fromConfig: true });
  }
  if (out.length === 0) {
    throw new ConfigError(`${cfg.origin}: no locations to check: it has no databases and no [pull] local_dir`);
  }
  return out;
}

function _table(rows: DatabaseStatus[]): string {
  const head = ["DATABASE", "STATE", "NEWEST", "AGE", "SIZE", "BACKUPS", "TOTAL", "VERIFIED", "LOCATION"];
  const body = rows.map((r) => [
    printable(r.database, Infinity),
    r.state,
    r.newest?.time ?? "-",
    r.newest ? formatAge(r.newest.ageSeconds) : "-",
    r.newest ? formatBytes(r.newest.bytes) : "-",
    String(r.backups),
    formatBytes(r.totalBytes),
    verifiedLabel(r.newest),
    printable(r.location, Infinity),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  return [head, ...body].map((row) => row.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

/** One sample per database for the metrics file: the stalest where a database appears twice. */
function _freshness(rows: DatabaseStatus[]): FreshnessSample[] {
  const rank = { fresh: 0, stale: 1, missing: 2 };
  const worst = new Map<string, DatabaseStatus>();
  for (const r of rows) {
    const w = worst.get(r.database);
    if (
      !w || rank[r.state] > rank[w.state] ||
      (rank[r.state] === rank[w.state] && (r.newest?.ageSeconds ?? 0) > (w.newest?.ageSeconds ?? 0))
    ) worst.set(r.database, r);
  }
  return [...worst.values()].map((r) => ({
    database: r.database,
    newestMs: r.newest ? Date.parse(r.newest.time) : null,
    newestBytes: r.newest?.bytes ?? null,
    ageSeconds: r.newest?.ageSeconds ?? null,
    maxAgeSeconds: r.maxAgeSeconds,
    stale: r.state !== "fresh",
    backups: r.backups,
    totalBytes: r.totalBytes,
  }));
}

/** One database's --json object. */
function _jsonRow(r: DatabaseStatus): Record<string, unknown> {
  const { database, location, state, maxAgeSeconds, newest, backups, totalBytes } = r;
  return { database, location, state, fresh: state === "fresh", maxAgeSeconds, newest, backups, totalBytes };
}

/** Runs `sqlbk status`. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    config: { type: "string", short: "c" },
    "max-age": { type: "string" },
    json: { type: "boolean", default: false },
    html: { type: "string" },
    ...REPORT_FLAGS,
    ...CONNECTION_FLAGS,
  }, { command: "status" });
  let flagMaxAge: number | undefined;
  if (values["max-age"] !== undefined) {
    try {
      flagMaxAge = parseDuration(values["max-age"]);
    } catch { /* reported below */ }
    if (flagMaxAge === undefined || flagMaxAge < 0) {
      throw new ConfigError(
        `Invalid --max-age "${values["max-age"]}": expected a duration such as "25h" or "1h30m" (no "d" unit)`,
      );
    }
  }
  const cfg = values.config !== undefined ? await loadConfig(values.config, { requireSource: false }) : undefined;
  const targets = reportTargets(values, cfg?.monitor);
  const fallback = cfg?.monitor.maxAgeMs ?? parseDuration(DEFAULT_MAX_AGE);
  // Per-database max_age, by the name in the file names (the source's stem) and the table name.
  const perDatabase = new Map(cfg?.monitor.maxAgeByDatabase ?? []);
  for (const d of cfg?.databases ?? []) {
    const ms = cfg?.monitor.maxAgeByDatabase.get(d.name);
    if (ms !== undefined) perDatabase.set(databaseStem(d.sourcePath), ms);
  }
  const maxAgeMs = (db: string) => flagMaxAge ?? perDatabase.get(db) ?? fallback;
  const locations = _locations(positionals, cfg);

  // For a remote target, "verified" says whether this pull host holds the file verified in
  // its [pull] local_dir (a .sha256 beside it, written only after verification).
  const table = cfg ? parsePullTable(cfg.pull, cfg.origin) : {};
  let heldVerified: Map<string, BackupEntry["verifiedCheck"]> | null = null;
  if (table.localDir !== undefined && locations.some((l) => isRemoteTarget(l.where))) {
    const local = await listBackups(table.localDir).catch(() => []);
    heldVerified = new Map(local.filter((e) => e.verified).map((e) => [e.file, e.verifiedCheck]));
  }

  const now = Date.now();
  const rows: DatabaseStatus[] = [];
  // --json, in location order: a location that yields no database still gets an object
  // (database null, state "empty" or "unreadable", and the error), so a parser sees it.
  const json: Record<string, unknown>[] = [];
  const locationRow = (location: string, state: "empty" | "unreadable", error: string) =>
    json.push({
      database: null,
      location,
      state,
      fresh: false,
      maxAgeSeconds: null,
      newest: null,
      backups: 0,
      totalBytes: 0,
      error,
    });
  let unreadable = 0;
  let empty = 0;
  for (const loc of locations) {
    let entries: BackupEntry[];
    try {
      if (isRemoteTarget(loc.where)) {
        const remote = await listRemoteBackups(parseTarget(loc.where), connectionOptions(values, table));
        entries = remote.map((e) => ({
          ...e,
          verified: heldVerified ? heldVerified.has(e.file) : null,
          verifiedCheck: heldVerified?.get(e.file) ?? null,
        }));
      } else {
        entries = await listBackups(loc.where);
      }
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      if (loc.fromConfig && err instanceof Deno.errors.NotFound) {
        entries = [];
      } else {
        // A remote target's error names the host already, as list prints it.
        const failure = isRemoteTarget(loc.where)
          ? (err instanceof Error ? err : new Error(String(err)))
          : listingError(loc.where, err);
        if (failure instanceof ConfigError) throw failure;
        unreadable++;
        console.error(`error: ${printable(failure.message, Infinity)}`);
        locationRow(loc.where, "unreadable", failure.message);
        continue;
      }
    }
    const found = backupStatus(entries, loc.where, { now, maxAgeMs, expected: loc.expected });
    if (found.length === 0) {
      // Nothing expected and nothing there: a check that cannot fail is no check.
      empty++;
      const message = `No backups in "${loc.where}" (backups are named like ` +
        `<database>-YYYY-MM-DDTHH-MM-SSZ-<strategy>.bck.gz)`;
      console.error(`error: ${printable(message, Infinity)}`);
      locationRow(loc.where, "empty", message);
    }
    rows.push(...found);
    json.push(...found.map(_jsonRow));
  }

  if (values.json) {
    for (const o of json) console.log(safeJson(o));
  } else if (rows.length > 0) {
    console.log(_table(rows));
  }
  const bad = rows.filter((r) => r.state !== "fresh");
  const ok = bad.length === 0 && unreadable === 0 && empty === 0;
  if (values.html !== undefined) {
    const path = values.html;
    await rewriteLocked(path, () => renderStatusPage(rows, { now })).catch((err) =>
      warn(`cannot write status page "${path}": ${errorMessage(err)}`)
    );
  }
  const age = (seconds: number) => seconds < 0 ? `dated ${formatAge(seconds)}` : `${formatAge(seconds)} old`;
  const lines = rows.map((r) =>
    `${r.database}: ${r.state}${r.newest ? `, newest ${r.newest.file}, ${age(r.newest.ageSeconds)}` : ""}`
  );
  await reportRun(targets, {
    ok,
    summary: `sqlbk status: ${ok ? "all fresh" : `${bad.length} stale or missing`}\n${lines.join("\n")}\n`,
    freshness: _freshness(rows),
  }, { warn });
  return ok ? ExitCode.OK : ExitCode.FAILURE;
}
