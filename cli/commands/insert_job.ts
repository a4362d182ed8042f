/**
 * `sqlbk insert-job`: put the recurrent `db_backup` job into the app's `job_queue`, exactly
 * as the Go `insert-job` tool does.
 *
 * @module
 */

import { parseFlags } from "../args.ts";
import { parseDuration } from "../../src/duration.ts";
import { ConfigError, ExitCode } from "../../src/errors.ts";
import { checkInterval, JobQueue, parseTimestamp } from "../../src/queue.ts";

/** One line for the command list. */
export const summary = "Insert the recurrent db_backup job into the app's job_queue";

/** The help text. */
export const help = `sqlbk insert-job: insert the recurrent backup job (job_type "db_backup") into the
job_queue table of the app's database, as the Go insert-job tool does. A worker ("sqlbk run",
or runWorker() in a Deno app) then runs it every interval.

Usage:
  sqlbk insert-job --dbpath FILE [--interval DUR] [--scheduled TIME] [options]

Options (the Go tool's single-dash spellings -dbpath, -interval, -scheduled work too):
      --dbpath FILE      the app's SQLite database (required)
      --interval DUR     how often the backup runs, Go duration, whole seconds, at least 1s
                         (default: 24h; stored in Go's canonical form, e.g. 24h0m0s)
      --scheduled TIME   the first run, RFC 3339 (e.g. 2025-07-01T03:00:00Z or
                         2025-07-01T05:00:00+02:00; default: now); stored in UTC, whole seconds
      --create-schema    create the job_queue table when it does not exist (default: off,
                         a missing table is an error)
      --replace          replace an existing db_backup job (default: off, an existing job
                         is an error naming its row)
  -h, --help             show this help

Output: the inserted row on stdout: id, interval, first run.

Exit codes: 0 ok, 1 failure, 2 usage error, missing table or an existing job.

Examples:
  sqlbk insert-job --dbpath app.db --interval 24h --scheduled 2025-07-01T03:00:00Z
  sqlbk insert-job -dbpath app.db -interval 6h
  sqlbk insert-job --dbpath app.db --interval 1h --replace
`;

/**
 * Rewrites the Go flag package's spellings of long flags (`-name`, `-name=value`) to
 * `--name` for the given names; everything else is left alone.
 *
 * @example
 * ```ts
 * goStyleFlags(["-dbpath", "app.db"], ["dbpath"]); // ["--dbpath", "app.db"]
 * ```
 */
export function goStyleFlags(args: string[], names: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    const m = /^-([a-z][a-z-]+)(=.*)?$/.exec(arg);
    out.push(m && names.includes(m[1]) ? `--${m[1]}${m[2] ?? ""}` : arg);
  }
  return out;
}

/** Runs `sqlbk insert-job`. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    goStyleFlags(args, ["dbpath", "interval", "scheduled", "create-schema", "replace"]),
    {
      dbpath: { type: "string" },
      interval: { type: "string", default: "24h" },
      scheduled: { type: "string" },
      "create-schema": { type: "boolean", default: false },
      replace: { type: "boolean", default: false },
    },
    { command: "insert-job" },
  );
  if (positionals.length > 0) {
    throw new ConfigError(`Unexpected argument "${positionals[0]}" (see "sqlbk insert-job --help")`);
  }
  if (!values.dbpath) {
    throw new ConfigError(`Missing --dbpath FILE: the app's SQLite database (see "sqlbk insert-job --help")`);
  }
  let intervalMs: number;
  try {
    intervalMs = parseDuration(values.interval);
  } catch (err) {
    throw new ConfigError(
      `Invalid --interval "${values.interval}": expected a Go duration such as "24h", "1h30m" or "15m"${
        /\d\s*d$/.test(values.interval) ? ` (no "d" unit: write "24h")` : ""
      }`,
      { cause: err },
    );
  }
  checkInterval(intervalMs);
  let scheduledFor: Date | undefined;
  if (values.scheduled !== undefined) {
    const parsed = parseTimestamp(values.scheduled);
    if (!parsed) {
      throw new ConfigError(
        `Invalid --scheduled "${values.scheduled}": expected an RFC 3339 time such as "2025-07-01T03:00:00Z" or "2025-07-01T05:00:00+02:00"`,
      );
    }
    scheduledFor = parsed;
  }
  const queue = JobQueue.open(values.dbpath);
  try {
    if (values["create-schema"] && !queue.hasTable()) {
      await queue.createSchema();
      console.error(`created table job_queue in ${values.dbpath}`);
    }
    const { job, replaced } = await queue.insertBackupJob({ intervalMs, scheduledFor, replace: values.replace });
    for (const r of replaced) console.error(`replaced job ${r.id} (status ${r.status}, interval ${r.interval})`);
    console.log(`inserted job ${job.id}: db_backup every ${job.interval}, first run ${job.scheduledFor}`);
  } finally {
    queue.close();
  }
  return ExitCode.OK;
}
