/**
 * The monitoring keys of the TOML config: `metrics_file`, `heartbeat_url` and `probes`
 * at the top level, and `max_age` at the top level (the default) or in a
 * `[databases.<name>]` table.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { probeProblem } from "./probe_check.ts";
import { parseDuration } from "../duration.ts";

/** How old the newest backup may be before `sqlbk status` calls its database stale. */
export const DEFAULT_MAX_AGE = "25h";

/** The top-level keys this module reads. */
export const MONITOR_KEYS = ["metrics_file", "heartbeat_url", "probes"] as const;

/** The validated monitoring keys; every one optional. */
export interface MonitorConfig {
  /** Prometheus textfile to write after each run (`metrics_file`). Default: none. */
  metricsFile?: string;
  /** Heartbeat URL pinged after each run (`heartbeat_url`). Default: none. */
  heartbeatUrl?: string;
  /** SQL probes run on every verified copy (`probes`). Default: none. */
  probes: string[];
  /** Top-level `max_age` in ms. Default 25 hours. */
  maxAgeMs: number;
  /** `max_age` of `[databases.<name>]` tables that set it, in ms, by table name. */
  maxAgeByDatabase: Map<string, number>;
}

/**
 * Reads the monitoring keys of a parsed TOML document; unknown keys are checked elsewhere.
 *
 * @example
 * ```ts
 * const m = parseMonitorKeys({ metrics_file: "/var/lib/node_exporter/sqlbk.prom" }, "sqlbk.toml");
 * m.metricsFile; // "/var/lib/node_exporter/sqlbk.prom"
 * ```
 */
export function parseMonitorKeys(raw: Record<string, unknown>, origin = "config"): MonitorConfig {
  const fail = (msg: string): never => {
    throw new ConfigError(`${origin}: ${msg}`);
  };
  const str = (key: string): string | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || v === "") fail(`invalid "${key}" ${JSON.stringify(v)}: expected a non-empty string`);
    return v as string;
  };
  const heartbeatUrl = str("heartbeat_url");
  if (heartbeatUrl !== undefined) checkHeartbeatUrl(heartbeatUrl, `"heartbeat_url" in ${origin}`);
  const probes = raw.probes;
  if (probes !== undefined && (!Array.isArray(probes) || probes.some((p) => typeof p !== "string"))) {
    fail(
      `invalid "probes": expected an array of SQL statements, e.g. ["SELECT count(*) > 0 FROM users"]`,
    );
  }
  if (probes !== undefined) {
    (probes as string[]).forEach((probe, i) => {
      const problem = probeProblem(probe);
      if (problem !== null) fail(`invalid "probes" entry ${i + 1} ${JSON.stringify(probe)}: ${problem}`);
    });
  }
  const duration = (table: Record<string, unknown>, where: string): number | undefined => {
    const v = table.max_age;
    if (v === undefined) return undefined;
    let ms = -1;
    try {
      if (typeof v === "string") ms = parseDuration(v);
    } catch { /* reported below */ }
    if (ms < 0) {
      fail(
        `invalid "max_age"${where} ${JSON.stringify(v)}: expected a duration such as "25h" or "1h30m" (no "d" unit)`,
      );
    }
    return ms;
  };
  const maxAgeByDatabase = new Map<string, number>();
  const tables = raw.databases;
  if (tables && typeof tables === "object" && !Array.isArray(tables)) {
    for (const [name, table] of Object.entries(tables as Record<string, unknown>)) {
      if (!table || typeof table !== "object" || Array.isArray(table)) continue; // reported by resolveConfig
      const ms = duration(table as Record<string, unknown>, ` in [databases.${name}]`);
      if (ms !== undefined) maxAgeByDatabase.set(name, ms);
    }
  }
  return {
    metricsFile: str("metrics_file"),
    heartbeatUrl,
    probes: (probes as string[] | undefined) ?? [],
    maxAgeMs: duration(raw, "") ?? parseDuration(DEFAULT_MAX_AGE),
    maxAgeByDatabase,
  };
}

/**
 * Throws a {@link ConfigError} unless `url` is an absolute http(s) URL.
 *
 * @example
 * ```ts
 * checkHeartbeatUrl("https://hc-ping.com/0b6c8a4e-...", "--heartbeat-url");
 * ```
 */
export function checkHeartbeatUrl(url: string, what: string): void {
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch { /* reported below */ }
  if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    throw new ConfigError(
      `Invalid ${what} "${url}": expected an http:// or https:// URL such as "https://hc-ping.com/<uuid>"`,
    );
  }
}
