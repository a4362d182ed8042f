/**
 * The TOML configuration: the Go tool's flat keys (`source_path`, `backup_dir`,
 * `strategy`, `pages_per_step`, `sleep_interval`), the additive keys (`keep_last`,
 * `max_duration`, `compression`, `compression_level`), `[databases.<name>]` tables for several
 * databases, and a `[pull]` table for the pull client.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import { DurationError, formatDuration, parseDuration } from "./duration.ts";
import { ConfigError } from "./errors.ts";
import { databaseStem } from "./naming.ts";
import { DEFAULT_MAX_AGE, MONITOR_KEYS, type MonitorConfig, parseMonitorKeys } from "./monitor/monitor_config.ts";
import { type Codec, CODEC_NAMES, LEVELS } from "./codecs/levels.ts";
import { parsePullTable } from "./pull/pull_config.ts";

/** The two ways to take a snapshot. */
export type Strategy = "online" | "vacuum";
/** Every strategy name, in the order the help lists them. */
export const STRATEGIES: readonly Strategy[] = ["online", "vacuum"];

/**
 * How a snapshot is checked before it is published: `quick` (`PRAGMA quick_check`, the
 * default), `full` (`PRAGMA integrity_check`, which also cross-checks every index) or
 * `none`.
 */
export type SnapshotCheck = "quick" | "full" | "none";
/** Every check level, in the order the help lists them. */
export const SNAPSHOT_CHECKS: readonly SnapshotCheck[] = ["quick", "full", "none"];

/** The settings of one database's backup, validated, with defaults applied. */
export interface BackupConfig {
  /** The database's name in reports: its `[databases.<name>]` key, else the source's stem. */
  name: string;
  /** The live database to back up. */
  sourcePath: string;
  /** Where archives are published. Default `./backups`. */
  backupDir: string;
  /** `online` (default) or `vacuum`. */
  strategy: Strategy;
  /** Pages copied per online backup step. Default 100, at least 1. */
  pagesPerStep: number;
  /** Pause between online backup steps, in ms. Default 10. */
  sleepIntervalMs: number;
  /** Give up on a backup that runs longer than this, in ms; 0 means no limit. Default 1 hour. */
  maxDurationMs: number;
  /** Keep this many newest backups of the database; 0 keeps all. Default 0. */
  keepLast: number;
  /** `gzip` (default; the Go tools read it) or `zstd` (faster, smaller; `.bck.zst`). */
  compression: Codec;
  /** The codec's level: gzip 1 to 9 (default 6), zstd 1 to 19 (default 3). */
  compressionLevel: number;
  /** The check a snapshot passes before it is published. Default `quick`. */
  check: SnapshotCheck;
}

/** The same settings as a library caller writes them: only `sourcePath` is required. */
export interface BackupConfigInput {
  /** The database's name in reports. Default: the source's stem. */
  name?: string;
  /** The live database to back up. Required. */
  sourcePath: string;
  /** Where archives are published. Default `./backups`. */
  backupDir?: string;
  /** `online` (default) or `vacuum`. */
  strategy?: Strategy;
  /** Pages per online step. Default 100. */
  pagesPerStep?: number;
  /** Pause between online steps: ms, or Go duration text. Default `10ms`. */
  sleepInterval?: number | string;
  /** Time limit: ms, or Go duration text; 0 for none. Default `1h`. */
  maxDuration?: number | string;
  /** Newest backups to keep; 0 keeps all. Default 0. */
  keepLast?: number;
  /** `gzip` or `zstd`. Default `gzip`. */
  compression?: Codec;
  /** The codec's level: gzip 1 to 9 (default 6), zstd 1 to 19 (default 3). */
  compressionLevel?: number;
  /** The check a snapshot passes before it is published: `quick`, `full` or `none`. Default `quick`. */
  check?: SnapshotCheck;
}

/** A whole config file: the databases to back up, and the `[pull]` table if any. */
export interface SqlbkConfig {
  /** The databases, in file order (one for a flat config). */
  databases: BackupConfig[];
  /** The `[pull]` table as written; the pull client validates it. */
  pull: Record<string, unknown> | null;
  /** Where the config came from, for messages. */
  origin: string;
  /** The monitoring keys: `metrics_file`, `heartbeat_url`, `probes`, and `max_age` (also per database). */
  monitor: MonitorConfig;
}

/** Defaults of every optional key, as TOML text would write them. */
export const DEFAULTS = {
  backup_dir: "./backups",
  strategy: "online" as Strategy,
  pages_per_step: 100,
  sleep_interval: "10ms",
  max_duration: "1h",
  keep_last: 0,
  compression: "gzip" as Codec,
  /** gzip's default level; zstd's is {@link LEVELS}.zstd.default. */
  compression_level: 6,
  check: "quick" as SnapshotCheck,
  max_age: DEFAULT_MAX_AGE,
} as const;

/** The keys a database's settings may have, at the top level or in a `[databases.<name>]` table. */
export const BACKUP_KEYS = [
  "source_path",
  "backup_dir",
  "strategy",
  "pages_per_step",
  "sleep_interval",
  "max_duration",
  "keep_last",
  "compression",
  "compression_level",
  "check",
  "max_age",
] as const;

const _TOP_KEYS = [...BACKUP_KEYS, "databases", "pull", ...MONITOR_KEYS];

function _fail(origin: string, message: string): never {
  throw new ConfigError(`${origin}: ${message}`);
}

function _describe(value: unknown): string {
  if (typeof value === "string") return `"${value}"`;
  if (value !== null && typeof value === "object") return Array.isArray(value) ? "an array" : "a table";
  return String(value);
}

function _checkKeys(table: Record<string, unknown>, known: readonly string[], where: string, origin: string) {
  for (const key of Object.keys(table)) {
    if (!known.includes(key)) {
      _fail(origin, `unknown key "${key}"${where}; known keys: ${known.join(", ")}`);
    }
  }
}

function _string(table: Record<string, unknown>, key: string, where: string, origin: string): string | undefined {
  const value = table[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") {
    _fail(origin, `invalid "${key}"${where} ${_describe(value)}: expected a non-empty string`);
  }
  return value;
}

function _int(
  table: Record<string, unknown>,
  key: string,
  where: string,
  origin: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  let value = table[key];
  if (value === undefined) return undefined;
  if (typeof value === "bigint") value = Number(value);
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER
      ? `a whole number of at least ${min}`
      : `a whole number from ${min} to ${max}`;
    _fail(origin, `invalid "${key}"${where} ${_describe(value)}: expected ${range}`);
  }
  return value;
}

function _duration(table: Record<string, unknown>, key: string, where: string, origin: string): number | undefined {
  const value = table[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string") {
    _fail(
      origin,
      `invalid "${key}"${where} ${_describe(value)}: expected a duration string such as "10ms", "30s" or "1h"`,
    );
  }
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (err) {
    if (err instanceof DurationError) {
      _fail(
        origin,
        `invalid "${key}"${where} "${value}": expected a duration such as "10ms", "30s", "1h30m" or "0s"${
          /\d\s*d$/.test(value) ? ` (no "d" unit: write "24h")` : ""
        }`,
      );
    }
    throw err;
  }
  if (ms < 0) _fail(origin, `invalid "${key}"${where} "${value}": a duration cannot be negative`);
  return ms;
}

interface _Layer {
  source_path?: string;
  backup_dir?: string;
  strategy?: Strategy;
  pages_per_step?: number;
  sleep_interval?: number;
  max_duration?: number;
  keep_last?: number;
  compression?: Codec;
  compression_level?: number;
  check?: SnapshotCheck;
}

function _layer(table: Record<string, unknown>, where: string, origin: string): _Layer {
  const strategy = _string(table, "strategy", where, origin);
  if (strategy !== undefined && !STRATEGIES.includes(strategy as Strategy)) {
    _fail(origin, `invalid "strategy"${where} "${strategy}": expected "online" or "vacuum"`);
  }
  const check = _string(table, "check", where, origin);
  if (check !== undefined && !SNAPSHOT_CHECKS.includes(check as SnapshotCheck)) {
    _fail(origin, `invalid "check"${where} "${check}": expected "quick", "full" or "none"`);
  }
  return {
    source_path: _string(table, "source_path", where, origin),
    backup_dir: _string(table, "backup_dir", where, origin),
    strategy: strategy as Strategy | undefined,
    pages_per_step: _int(table, "pages_per_step", where, origin, 1, 2 ** 31 - 1),
    sleep_interval: _duration(table, "sleep_interval", where, origin),
    max_duration: _duration(table, "max_duration", where, origin),
    keep_last: _int(table, "keep_last", where, origin, 0),
    compression: _codec(table, where, origin),
    compression_level: _int(table, "compression_level", where, origin, 1, LEVELS.zstd.max),
    check: check as SnapshotCheck | undefined,
  };
}

function _codec(table: Record<string, unknown>, where: string, origin: string): Codec | undefined {
  const value = _string(table, "compression", where, origin);
  if (value !== undefined && !CODEC_NAMES.includes(value as Codec)) {
    _fail(origin, `invalid "compression"${where} "${value}": expected "gzip" or "zstd"`);
  }
  return value as Codec | undefined;
}

function _strip(layer: _Layer): _Layer {
  return Object.fromEntries(Object.entries(layer).filter(([, v]) => v !== undefined)) as _Layer;
}

/** Where a flag's value is said to come from: " (command line)", unless the origin already says so. */
function _flagWhere(origin: string): string {
  return origin === "command line" ? "" : " (command line)";
}

function _finish(
  name: string | undefined,
  layer: _Layer,
  where: string,
  origin: string,
  overrides: _Layer = {},
): BackupConfig {
  if (layer.source_path === undefined) {
    _fail(origin, `missing "source_path"${where}: set it to the path of the SQLite database to back up`);
  }
  if (databaseStem(layer.source_path).startsWith(".")) {
    _fail(
      origin,
      `invalid "source_path"${where} "${layer.source_path}": a file name starting with a dot makes hidden backup names that list, pull and retention never see (link or rename it to a name without the leading dot)`,
    );
  }
  const compression = layer.compression ?? DEFAULTS.compression;
  const range = LEVELS[compression];
  const level = layer.compression_level ?? range.default;
  if (level < range.min || level > range.max) {
    // The level may come from a flag while the codec comes from the file: name where it was set.
    const levelWhere = overrides.compression_level !== undefined ? _flagWhere(origin) : where;
    _fail(
      origin,
      `invalid "compression_level"${levelWhere} ${level}: expected a whole number from ${range.min} to ${range.max} for ${compression}`,
    );
  }
  return {
    name: name ?? databaseStem(layer.source_path),
    sourcePath: layer.source_path,
    backupDir: layer.backup_dir ?? DEFAULTS.backup_dir,
    strategy: layer.strategy ?? DEFAULTS.strategy,
    pagesPerStep: layer.pages_per_step ?? DEFAULTS.pages_per_step,
    sleepIntervalMs: layer.sleep_interval ?? parseDuration(DEFAULTS.sleep_interval),
    maxDurationMs: layer.max_duration ?? parseDuration(DEFAULTS.max_duration),
    keepLast: layer.keep_last ?? DEFAULTS.keep_last,
    compression,
    compressionLevel: level,
    check: layer.check ?? DEFAULTS.check,
  };
}

/**
 * Validates a parsed TOML document (or any object of the same shape).
 *
 * @param raw the document
 * @param options `origin` names it in messages (default "config"); `overrides` are
 *   snake_case keys (from CLI flags) that win over every table; `requireSource`
 *   (default true) makes a missing `source_path` an error.
 *
 * @example
 * ```ts
 * const cfg = resolveConfig({ source_path: "app.db", strategy: "vacuum" });
 * cfg.databases[0].backupDir; // "./backups"
 * ```
 */
export function resolveConfig(
  raw: Record<string, unknown>,
  options: { origin?: string; overrides?: Record<string, unknown>; requireSource?: boolean } = {},
): SqlbkConfig {
  const origin = options.origin ?? "config";
  _checkKeys(raw, _TOP_KEYS, "", origin);
  const overrides = _strip(_layer(options.overrides ?? {}, _flagWhere(origin), origin));
  const top = _layer(raw, "", origin);
  const pull = raw.pull;
  if (pull !== undefined && (pull === null || typeof pull !== "object" || Array.isArray(pull))) {
    _fail(origin, `invalid "pull" ${_describe(pull)}: expected a [pull] table`);
  }
  // Checked whichever command loads the file (backup and run too), not only by pull and status.
  if (pull !== undefined) parsePullTable(pull as Record<string, unknown>, origin);
  const tables = raw.databases;
  const databases: BackupConfig[] = [];
  if (tables !== undefined) {
    if (tables === null || typeof tables !== "object" || Array.isArray(tables)) {
      _fail(origin, `invalid "databases" ${_describe(tables)}: expected [databases.<name>] tables`);
    }
    if (top.source_path !== undefined) {
      _fail(
        origin,
        `"source_path" is set at the top level and [databases.*] tables exist: move it into a [databases.<name>] table`,
      );
    }
    if (overrides.source_path !== undefined) {
      _fail(origin, `a database path on the command line cannot be combined with [databases.*] tables`);
    }
    for (const [name, table] of Object.entries(tables as Record<string, unknown>)) {
      const where = ` in [databases.${name}]`;
      if (table === null || typeof table !== "object" || Array.isArray(table)) {
        _fail(origin, `invalid "databases.${name}" ${_describe(table)}: expected a table`);
      }
      if (/[\\/]/.test(name) || name.startsWith(".")) {
        _fail(origin, `invalid database name "${name}": it becomes part of file names, so no slashes or leading dot`);
      }
      _checkKeys(table as Record<string, unknown>, BACKUP_KEYS, where, origin);
      const own = _strip(_layer(table as Record<string, unknown>, where, origin));
      databases.push(_finish(name, { ..._strip(top), ...own, ...overrides }, where, origin, overrides));
    }
    if (databases.length === 0) _fail(origin, `[databases] has no tables: add [databases.<name>] with a source_path`);
  } else if (top.source_path !== undefined || overrides.source_path !== undefined || options.requireSource !== false) {
    databases.push(_finish(undefined, { ..._strip(top), ...overrides }, "", origin, overrides));
  }
  const seen = new Map<string, string>();
  for (const db of databases) {
    const key = `${_realDir(db.backupDir)}\0${databaseStem(db.sourcePath)}`;
    const other = seen.get(key);
    if (other !== undefined) {
      _fail(
        origin,
        `databases "${other}" and "${db.name}" would write the same backup names ("${
          databaseStem(db.sourcePath)
        }-*") ` +
          `into "${db.backupDir}": give one of them its own backup_dir`,
      );
    }
    seen.set(key, db.name);
  }
  const monitor = parseMonitorKeys(raw, origin);
  return { databases, pull: (pull as Record<string, unknown> | undefined) ?? null, origin, monitor };
}

/**
 * The real path of a directory (symlinks, `.`, `..` and trailing slashes resolved), for
 * telling whether two `backup_dir` values are one directory; a part that does not exist
 * yet is kept as written below the deepest part that does.
 */
function _realDir(dir: string): string {
  const abs = resolve(dir);
  try {
    return Deno.realPathSync(abs);
  } catch {
    const parent = dirname(abs);
    return parent === abs ? abs : join(_realDir(parent), basename(abs));
  }
}

/** The integer keys of a database's settings: TOML floats (`100.0`) are refused there. */
const _INTEGER_KEYS = ["pages_per_step", "keep_last", "compression_level"];

/** Refuses a TOML float (`100.0`, `1e2`) where a whole number is expected; `ints` is the document parsed with integers as bigint. */
function _refuseFloats(ints: Record<string, unknown>, origin: string): void {
  const tables: [string, unknown][] = [["", ints]];
  const dbs = ints.databases;
  if (dbs !== null && typeof dbs === "object" && !Array.isArray(dbs)) {
    for (const [name, table] of Object.entries(dbs)) tables.push([` in [databases.${name}]`, table]);
  }
  for (const [where, table] of tables) {
    if (table === null || typeof table !== "object") continue;
    for (const key of _INTEGER_KEYS) {
      const value = (table as Record<string, unknown>)[key];
      if (typeof value === "number") {
        _fail(
          origin,
          `invalid "${key}"${where} ${value}: expected a whole number written without a decimal point or exponent (such as ${
            Math.trunc(value)
          })`,
        );
      }
    }
  }
}

/**
 * Parses TOML text and validates it with {@link resolveConfig}. Syntax errors become a
 * {@link ConfigError} with SQLite-style position detail.
 *
 * @example
 * ```ts
 * const cfg = parseConfig('source_path = "app.db"\nstrategy = "vacuum"\n');
 * ```
 */
export function parseConfig(
  text: string,
  options: { origin?: string; overrides?: Record<string, unknown>; requireSource?: boolean } = {},
): SqlbkConfig {
  const origin = options.origin ?? "config";
  let raw: Record<string, unknown>;
  try {
    raw = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new ConfigError(`${origin}: invalid TOML: ${msg}`, { cause: err });
  }
  _refuseFloats(parseToml(text, { integersAsBigInt: true }) as Record<string, unknown>, origin);
  return resolveConfig(raw, { ...options, origin });
}

/**
 * Reads and validates a TOML config file.
 *
 * @example
 * ```ts
 * const cfg = await loadConfig("/etc/sqlbk.toml");
 * for (const db of cfg.databases) console.log(db.name, db.sourcePath);
 * ```
 */
export async function loadConfig(
  path: string,
  options: { overrides?: Record<string, unknown>; requireSource?: boolean } = {},
): Promise<SqlbkConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new ConfigError(
        `Cannot read config "${path}": no such file (write one with "sqlbk blueprint -o ${path}")`,
        {
          cause: err,
        },
      );
    }
    if (err instanceof Deno.errors.IsADirectory) {
      throw new ConfigError(`Cannot read config "${path}": it is a directory`, { cause: err });
    }
    throw new ConfigError(`Cannot read config "${path}": ${err instanceof Error ? err.message : err}`, { cause: err });
  }
  return parseConfig(text, { ...options, origin: path });
}

/**
 * Normalizes a library caller's settings into a {@link BackupConfig}, validating like a
 * config file does.
 *
 * @example
 * ```ts
 * const cfg = normalizeBackupConfig({ sourcePath: "app.db", sleepInterval: "0s" });
 * ```
 */
export function normalizeBackupConfig(input: BackupConfigInput | BackupConfig): BackupConfig {
  const asText = (v: number | string | undefined) => (typeof v === "number" ? formatDuration(v) : v);
  const i = input as BackupConfigInput & Partial<BackupConfig>;
  const raw: Record<string, unknown> = {
    source_path: i.sourcePath,
    backup_dir: i.backupDir,
    strategy: i.strategy,
    pages_per_step: i.pagesPerStep,
    sleep_interval: asText(i.sleepInterval ?? i.sleepIntervalMs),
    max_duration: asText(i.maxDuration ?? i.maxDurationMs),
    keep_last: i.keepLast,
    compression: i.compression,
    compression_level: i.compressionLevel,
    check: i.check,
  };
  for (const key of Object.keys(raw)) if (raw[key] === undefined) delete raw[key];
  const cfg = resolveConfig(raw, { origin: "backup config" }).databases[0];
  return input.name ? { ...cfg, name: input.name } : cfg;
}
