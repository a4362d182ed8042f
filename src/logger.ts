/**
 * Structured logging for jobs: one record per event (start, progress, done, failed), sent
 * to a logger the host application can replace.
 *
 * @module
 */

import { printable, safeJson } from "./printable.ts";

/** One log event. */
export interface LogRecord {
  /** ISO time of the event. */
  time: string;
  /** Severity. */
  level: "debug" | "info" | "warn" | "error";
  /** What happened, e.g. `backup.start`, `backup.progress`, `backup.done`, `backup.failed`. */
  event: string;
  /** A human sentence. */
  msg: string;
  /** Event fields: database, percent, file, error, ... */
  [field: string]: unknown;
}

/** Receives log records. */
export interface Logger {
  /** Handles one record; must not throw. */
  log(record: LogRecord): void;
}

/**
 * A logger that writes each record as one JSON line to standard error (terminal controls
 * escaped, see `safeJson`).
 *
 * @example
 * ```ts
 * const handler = createBackupHandler(config, { logger: jsonLogger });
 * ```
 */
export const jsonLogger: Logger = {
  log(record) {
    try {
      console.error(safeJson(record)); // names in fields are escaped
    } catch { /* logging never breaks a backup */ }
  },
};

/**
 * A logger that writes `time level msg key=value ...` lines to standard error, control,
 * BiDi and separator characters escaped (see `printable`).
 *
 * @example
 * ```ts
 * textLogger.log({ time: new Date().toISOString(), level: "info", event: "x", msg: "hello" });
 * ```
 */
export const textLogger: Logger = {
  log(record) {
    const { time, level, msg, event: _event, ...fields } = record;
    const extra = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === "string" && !/\s|"/.test(v) ? v : JSON.stringify(v)}`)
      .join(" ");
    try {
      console.error(printable(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? ` ${extra}` : ""}`, Infinity));
    } catch { /* logging never breaks a backup */ }
  },
};

/**
 * A logger that drops everything.
 *
 * @example
 * ```ts
 * await runBackup(config, { logger: silentLogger });
 * ```
 */
export const silentLogger: Logger = { log() {} };

/** What {@link emit} sends: a {@link LogRecord} without its time. */
export interface EmitRecord {
  /** Severity. Required: no default. */
  level: LogRecord["level"];
  /** What happened, e.g. `backup.start`. Required: no default. */
  event: string;
  /** A human sentence. Required: no default. */
  msg: string;
  /** Event fields: database, percent, file, error, ... Default: none. */
  [field: string]: unknown;
}

/**
 * Builds and sends a record with the current time.
 *
 * @example
 * ```ts
 * emit(textLogger, { level: "info", event: "backup.start", msg: "backup started", database: "app" });
 * ```
 */
export function emit(logger: Logger, record: EmitRecord): void {
  logger.log({ time: new Date().toISOString(), ...record });
}
