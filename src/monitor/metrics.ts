/**
 * Prometheus metrics in the text exposition format, for node_exporter's textfile
 * collector: one file that every `sqlbk backup`, `pull`, `run` and `status` updates.
 * Each run replaces only the series of the databases it reports and keeps the others
 * (an earlier run's other databases); the file is rewritten under a lock and published
 * atomically (temp file, fsync, rename), so a reader never sees half of it.
 *
 * @module
 */

import { rewriteLocked } from "./locked_write.ts";

/** What a run did: `backup` (push side) or `pull` (a pull host). */
export type RunKind = "backup" | "pull";

/** One database's outcome in a backup or pull run. */
export interface RunSample {
  /** The database name (as in backup file names). */
  database: string;
  /** `backup` or `pull`. */
  kind: RunKind;
  /** Whether it succeeded. */
  ok: boolean;
  /** When it ended, Unix ms. */
  endedMs: number;
  /** How long it took, in ms. */
  durationMs: number;
  /** Size of the archive written or fetched (successes). */
  bytes?: number;
}

/** One database's freshness, as `sqlbk status` found it. */
export interface FreshnessSample {
  /** The database name. */
  database: string;
  /** The newest backup's time (from its name), Unix ms, or null when there is none. */
  newestMs: number | null;
  /** The newest backup's size, or null. */
  newestBytes: number | null;
  /** Its age in seconds at the check, or null. */
  ageSeconds: number | null;
  /** The configured max age in seconds. */
  maxAgeSeconds: number;
  /** Stale or missing. */
  stale: boolean;
  /** How many backups there are. */
  backups: number;
  /** Their total size. */
  totalBytes: number;
}

/** The metric families sqlbk writes, with their help text, all gauges. */
export const METRIC_FAMILIES = {
  sqlbk_last_attempt_timestamp_seconds: "Unix time the last backup or pull of the database ended, successful or not.",
  sqlbk_last_attempt_success: "1 when the last backup or pull of the database succeeded, 0 when it failed.",
  sqlbk_last_success_timestamp_seconds: "Unix time the last successful backup or pull of the database ended.",
  sqlbk_last_duration_seconds: "Wall time of the last backup or pull of the database.",
  sqlbk_last_size_bytes: "Size of the archive the last successful backup or pull of the database wrote.",
  sqlbk_newest_backup_timestamp_seconds: "Unix time in the name of the newest backup of the database.",
  sqlbk_newest_backup_age_seconds: "Age of the newest backup of the database when sqlbk status last looked.",
  sqlbk_newest_backup_size_bytes: "Size of the newest backup of the database.",
  sqlbk_backup_max_age_seconds: "The max_age sqlbk status compares the newest backup with.",
  sqlbk_backup_stale: "1 when the newest backup of the database is older than max_age or there is none.",
  sqlbk_backups: "Number of backups of the database sqlbk status found.",
  sqlbk_backups_size_bytes: "Total size of the backups of the database sqlbk status found.",
} as const;

/** A metric family name. */
export type MetricName = keyof typeof METRIC_FAMILIES;

const _RUN_FAMILIES: MetricName[] = [
  "sqlbk_last_attempt_timestamp_seconds",
  "sqlbk_last_attempt_success",
  "sqlbk_last_success_timestamp_seconds",
  "sqlbk_last_duration_seconds",
  "sqlbk_last_size_bytes",
];
const _STATUS_FAMILIES = (Object.keys(METRIC_FAMILIES) as MetricName[]).filter((n) => !_RUN_FAMILIES.includes(n));

/** The samples of a metrics file: family → label text (`database="app",kind="pull"`) → value. */
export type MetricSamples = Map<MetricName, Map<string, number>>;

function _escape(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function _labels(database: string, kind?: RunKind): string {
  return `database="${_escape(database)}"${kind ? `,kind="${kind}"` : ""}`;
}

const _LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\}\s+(\S+)(?:\s+\d+)?$/;

/**
 * Reads the samples sqlbk wrote from a metrics file's text; lines that are not sqlbk's
 * (or not well-formed) are dropped.
 *
 * @example
 * ```ts
 * const samples = parseMetrics('sqlbk_backups{database="app"} 3\n');
 * samples.get("sqlbk_backups")?.get('database="app"'); // 3
 * ```
 */
export function parseMetrics(text: string): MetricSamples {
  const samples: MetricSamples = new Map();
  for (const line of text.split("\n")) {
    const m = _LINE.exec(line.trim());
    if (!m || !Object.hasOwn(METRIC_FAMILIES, m[1])) continue;
    const value = Number(m[3]);
    if (Number.isNaN(value) && m[3] !== "NaN") continue;
    const family = m[1] as MetricName;
    const map = samples.get(family) ?? new Map<string, number>();
    map.set(m[2].replace(/,$/, ""), value);
    samples.set(family, map);
  }
  return samples;
}

function _format(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
  return String(value);
}

/**
 * Renders samples in the Prometheus text exposition format: a `# HELP` and `# TYPE`
 * line per family, series sorted by labels.
 *
 * @example
 * ```ts
 * const text = renderMetrics(parseMetrics('sqlbk_backups{database="app"} 3\n'));
 * ```
 */
export function renderMetrics(samples: MetricSamples): string {
  const out: string[] = [];
  for (const family of Object.keys(METRIC_FAMILIES) as MetricName[]) {
    const series = samples.get(family);
    if (!series || series.size === 0) continue;
    out.push(`# HELP ${family} ${METRIC_FAMILIES[family]}`, `# TYPE ${family} gauge`);
    for (const labels of [...series.keys()].sort()) out.push(`${family}{${labels}} ${_format(series.get(labels)!)}`);
  }
  return out.length ? out.join("\n") + "\n" : "";
}

function _set(samples: MetricSamples, family: MetricName, labels: string, value: number | null): void {
  const map = samples.get(family) ?? new Map<string, number>();
  if (value === null) map.delete(labels);
  else map.set(labels, value);
  samples.set(family, map);
}

/**
 * Merges a run's samples into earlier ones: the series of each (database, kind) it
 * reports are replaced, except that a failure keeps the last success's time and size.
 *
 * @example
 * ```ts
 * const merged = mergeSamples(new Map(), { runs: [{ database: "app", kind: "backup", ok: true, endedMs: Date.now(), durationMs: 812, bytes: 1024 }] });
 * ```
 */
export function mergeSamples(
  samples: MetricSamples,
  update: { runs?: RunSample[]; freshness?: FreshnessSample[] },
): MetricSamples {
  for (const r of update.runs ?? []) {
    const labels = _labels(r.database, r.kind);
    const ended = Math.round(r.endedMs) / 1000;
    _set(samples, "sqlbk_last_attempt_timestamp_seconds", labels, ended);
    _set(samples, "sqlbk_last_attempt_success", labels, r.ok ? 1 : 0);
    _set(samples, "sqlbk_last_duration_seconds", labels, Math.round(r.durationMs) / 1000);
    if (r.ok) {
      _set(samples, "sqlbk_last_success_timestamp_seconds", labels, ended);
      if (r.bytes !== undefined) _set(samples, "sqlbk_last_size_bytes", labels, r.bytes);
    }
  }
  for (const f of update.freshness ?? []) {
    const labels = _labels(f.database);
    for (const family of _STATUS_FAMILIES) _set(samples, family, labels, null);
    _set(samples, "sqlbk_newest_backup_timestamp_seconds", labels, f.newestMs === null ? null : f.newestMs / 1000);
    _set(samples, "sqlbk_newest_backup_age_seconds", labels, f.ageSeconds);
    _set(samples, "sqlbk_newest_backup_size_bytes", labels, f.newestBytes);
    _set(samples, "sqlbk_backup_max_age_seconds", labels, f.maxAgeSeconds);
    _set(samples, "sqlbk_backup_stale", labels, f.stale ? 1 : 0);
    _set(samples, "sqlbk_backups", labels, f.backups);
    _set(samples, "sqlbk_backups_size_bytes", labels, f.totalBytes);
  }
  return samples;
}

/**
 * Updates a metrics file with a run's samples: under an exclusive lock on
 * `.<name>.lock` beside it, reads what earlier runs wrote, merges, and publishes the
 * result atomically (`<name>.tmp`, fsync, rename, fsync the directory). The directory
 * must exist.
 *
 * @example
 * ```ts
 * await updateMetricsFile("/var/lib/prometheus/node-exporter/sqlbk.prom", {
 *   runs: [{ database: "app", kind: "pull", ok: true, endedMs: Date.now(), durationMs: 2100, bytes: 1 << 20 }],
 * });
 * ```
 */
export async function updateMetricsFile(
  path: string,
  update: { runs?: RunSample[]; freshness?: FreshnessSample[] },
): Promise<void> {
  await rewriteLocked(path, (earlier) => renderMetrics(mergeSamples(parseMetrics(earlier ?? ""), update)));
}
